"""The caller's side of a scripted conversation: caller turns and agent replies cut from the clips.

The clips (``data/clips``) join sentences with 0.6-1.0 s of digital silence, so a sentence is
found exactly as a run of audio between silences of at least ``MIN_PAUSE_S``; its text is the
matching line of ``data/clips/texts/<clip>.txt``. Caller turns take sentences from the caller clips
in order (cycling); agent replies take sentences from the agent clip.

The script is **open loop**: the caller's timeline is fixed before the call, as the uplink must be
known before the model hears it. A caller who waits for the agent to finish is modelled as a pause
long enough for the reply in the lab's profiles (``expected first audio + reply + gap_s``); a
barge-in starts the next turn ``bargein_after_s`` after the agent's expected first audio. The
simulation reports whether each barge-in really fell inside the agent's audio at the caller's ear.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from translab.errors import ConfigError
from translab.media.clips import clip_path, load_clip

MIN_PAUSE_S = 0.4
"""Digital silence (|x| < 1e-4) at least this long (s) separates two sentences of a clip."""
SCRIPT_RATE = 48000
"""Sentences are cut at this rate (Hz); other rates are resampled from the clip."""


@functools.lru_cache(maxsize=32)
def _bounds(clip: str) -> tuple[tuple[float, float], ...]:
    """(start_s, end_s) of each sentence of ``clip``."""
    x = load_clip(clip, 16000)
    quiet = np.abs(x) < 1e-4
    # runs of speech between silences >= MIN_PAUSE_S
    edges = np.flatnonzero(np.diff(np.concatenate([[1], quiet.astype(np.int8), [1]])))
    runs = list(zip(edges[0::2], edges[1::2]))  # non-quiet runs [a, b)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < MIN_PAUSE_S * 16000:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return tuple((a / 16000, b / 16000) for a, b in merged)


def sentence_texts(clip: str) -> list[str]:
    """The lines of the clip's text file (one sentence each)."""
    path = clip_path(clip).parent / "texts" / f"{clip}.txt"
    if not path.is_file():
        raise ConfigError("clip", clip, "a clip with its sentences in data/clips/texts/<clip>.txt")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def sentences(clip: str, rate: int) -> list[tuple[np.ndarray, str]]:
    """Each sentence of ``clip`` as (float32 audio at ``rate`` Hz, its text)."""
    texts = sentence_texts(clip)
    bounds = _bounds(clip)
    if len(texts) != len(bounds):
        raise ConfigError("clip", clip, f"{len(texts)} sentences as in its text file; found {len(bounds)} "
                          f"runs of speech between pauses of {MIN_PAUSE_S} s")
    x = load_clip(clip, rate)
    return [(x[int(round(a * rate)):int(round(b * rate))].copy(), t) for (a, b), t in zip(bounds, texts)]


@dataclass(frozen=True)
class CallerTurn:
    """One caller turn: speech from ``start_s`` to ``end_s`` (call clock); ``interrupts``: it starts
    while the agent is expected to be replying to the previous turn."""

    index: int
    start_s: float
    end_s: float
    text: str
    clip: str
    sentence: int
    interrupts: bool


@dataclass(frozen=True)
class Script:
    """The caller's timeline and the agent's replies."""

    turns: tuple[CallerTurn, ...]
    duration_s: float
    replies: tuple[tuple[np.ndarray, str], ...]  # agent reply audio at 24 kHz and its text

    def caller_audio(self, rate: int) -> np.ndarray:
        """The caller's whole microphone signal (float32 at ``rate`` Hz)."""
        out = np.zeros(int(np.ceil(self.duration_s * rate)), dtype=np.float32)
        cache: dict[str, list[tuple[np.ndarray, str]]] = {}
        for t in self.turns:
            s = cache.setdefault(t.clip, sentences(t.clip, rate))[t.sentence][0]
            i = int(round(t.start_s * rate))
            out[i:i + len(s)] = s[: len(out) - i]
        return out


def build_script(
    turns: int,
    caller_clips: tuple[str, ...],
    agent_clip: str,
    *,
    bargein_every: int = 0,
    expected_first_audio_s: float = 1.2,
    gap_s: float = 1.5,
    bargein_after_s: float = 0.8,
    lead_s: float = 0.5,
) -> Script:
    """A script of ``turns`` caller turns. ``bargein_every`` k > 0: the caller interrupts the reply to
    every k-th turn (turns k, 2k, ...) ``bargein_after_s`` after its expected first audio
    (``expected_first_audio_s`` after the caller stopped); otherwise the next turn starts after the
    expected first audio + the reply + ``gap_s``. Times in s."""
    pool = [(c, i, a, t) for c in caller_clips for i, (a, t) in enumerate(sentences(c, 16000))]
    replies = tuple(sentences(agent_clip, 24000))
    out: list[CallerTurn] = []
    t = lead_s
    interrupts = False
    for n in range(turns):
        clip, i, audio, text = pool[n % len(pool)]
        end = t + len(audio) / 16000
        out.append(CallerTurn(n, t, end, text, clip, i, interrupts))
        reply_s = len(replies[n % len(replies)][0]) / 24000
        interrupts = bargein_every > 0 and (n + 1) % bargein_every == 0
        t = end + expected_first_audio_s + (bargein_after_s if interrupts else reply_s + gap_s)
    return Script(turns=tuple(out), duration_s=t, replies=replies)
