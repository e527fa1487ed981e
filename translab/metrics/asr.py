"""What a speech recogniser understood: word error rate of an offline recogniser.

The recogniser is CMU PocketSphinx 5.1.1, whose wheel ships a US-English acoustic model, dictionary
and language model (``pocketsphinx/model/en-us/``), so it runs offline; jiwer computes the WER.
Both are the optional extra ``translab[asr]``; without them :func:`recognise` and :func:`wer` raise
:class:`AsrUnavailable` naming the extra.

The callee of a voice agent is a recogniser, not a person: the figure that matters is the WER on
the audio the model received *beside the same recogniser on the clean clip* (its own baseline;
PocketSphinx is a small 2015-era model, so its baseline on the lab's synthetic clips is not 0:
0.35 on the whole slt-weather clip, 0.00 on awb-directions). It is also sensitive to the last bit:
the same clip rounded rather than truncated to int16 scores 0.35 instead of 0.15, so a single
recognition is noisy and WER comparisons need many turns and seeds.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from translab.errors import TranslabError
from translab.media.audio import resample, to_int16

ASR_RATE = 16000
"""PocketSphinx's en-us model runs on 16 kHz audio."""


class AsrUnavailable(TranslabError):
    """The optional ASR packages are not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(f"wer: needs the {package} package (pip install 'translab[asr]': pocketsphinx, jiwer)")


@functools.lru_cache(maxsize=1)
def _decoder() -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise AsrUnavailable("pocketsphinx") from None
    dec = Decoder(samprate=ASR_RATE, loglevel="FATAL")
    return dec, dec.get_cmn()


def recognise(audio: np.ndarray, rate: int) -> str:
    """The words PocketSphinx hears in ``audio`` (float in [-1, 1] at ``rate`` Hz), lower case. Each
    call starts from the model's initial state, so results do not depend on earlier calls."""
    x = resample(np.asarray(audio, dtype=np.float32), rate, ASR_RATE) if rate != ASR_RATE else audio
    dec, cmn = _decoder()
    dec.set_cmn(cmn)  # the cepstral mean adapts during an utterance: start each from the model's own
    dec.start_utt()
    dec.process_raw(to_int16(np.asarray(x, dtype=np.float32)).tobytes(), full_utt=True)
    dec.end_utt()
    hyp = dec.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (substitutions + deletions + insertions over reference words) after lower-
    casing, removing punctuation and joining lines on both sides. An empty hypothesis scores 1.0."""
    try:
        import jiwer
    except ImportError:
        raise AsrUnavailable("jiwer") from None
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())  # newlines too
    if not hypothesis:
        return 1.0
    return float(jiwer.wer(reference, hypothesis, reference_transform=norm, hypothesis_transform=norm))
