"""Write <clip>.json beside every clip in this folder: where it comes from, its licence, its measured
bandwidth and its speech activity (Silero VAD segments by translab.media.vad).

Run by make_clips.sh; on its own: ``PYTHONPATH=. python data/clips/make_cards.py`` from the repository.
The numbers are recomputed from the WAV files, so the cards always describe the files beside them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository, so translab imports without installing

from translab.media.audio import load_wav  # noqa: E402
from translab.media.clips import card_from_audio  # noqa: E402

FLITE = "flite 2.2-5 (Debian), CMU ARCTIC voice"
FLITE_LICENCE = "CMU Flite licence (BSD-like, attribution kept; /usr/share/doc/flite/copyright)"
ESPEAK = "espeak-ng 1.51+dfsg-10+deb12u2 (Debian), formant synthesis"
ESPEAK_LICENCE = "GPL-3.0-or-later (espeak-ng and its voice data; generated output)"

#: Provenance of each clip: source, licence, speaker, language (BCP 47), kind.
SOURCES: dict[str, dict[str, str]] = {
    "slt-weather": dict(source=f"{FLITE} cmu_us_slt", licence=FLITE_LICENCE,
                        speaker="US English female (synthetic)", language="en-US", kind="synthetic"),
    "rms-order": dict(source=f"{FLITE} cmu_us_rms", licence=FLITE_LICENCE,
                      speaker="US English male (synthetic)", language="en-US", kind="synthetic"),
    "awb-directions": dict(source=f"{FLITE} cmu_us_awb", licence=FLITE_LICENCE,
                           speaker="Scottish English male (synthetic)", language="en-GB", kind="synthetic"),
    "espeak-de-wetter": dict(source=f"{ESPEAK}, voice de", licence=ESPEAK_LICENCE,
                             speaker="German male (synthetic)", language="de", kind="synthetic"),
    "espeak-es-direcciones": dict(source=f"{ESPEAK}, voice es+f3", licence=ESPEAK_LICENCE,
                                  speaker="Spanish female variant (synthetic)", language="es", kind="synthetic"),
    "librivox-austen": dict(
        source="Debian pocketsphinx-testdata 0.8+5prealpha+1-15: test/data/librivox/"
               "sense_and_sensibility_01_austen_64kb-0880, -0890, -0930.wav (LibriVox reading of Jane "
               "Austen, Sense and Sensibility, ch. 1; 64 kbit/s MP3 source resampled to 16 kHz)",
        licence="public domain (LibriVox recordings); shipped in the package under CMU's BSD-2 licence",
        speaker="one LibriVox volunteer reader (human)", language="en", kind="human recording"),
    "human-channels-48k": dict(
        source="Debian alsa-utils 1.2.8-1: /usr/share/sounds/alsa/{Front,Side,Rear}_*.wav (speaker-test "
               "voice prompts, 48 kHz recordings)",
        licence="GPL-2.0 (alsa-utils; /usr/share/doc/alsa-utils/copyright)",
        speaker="one human speaker (ALSA speaker-test prompts)", language="en", kind="human recording"),
}


def main() -> None:
    for wav in sorted(HERE.glob("*.wav")):
        name = wav.stem
        if name not in SOURCES:
            raise SystemExit(f"{wav.name}: no entry in SOURCES (make_cards.py); add its source and licence")
        x, rate = load_wav(wav)
        card = {
            "clip": name,
            "file": wav.name,
            "sha256": hashlib.sha256(wav.read_bytes()).hexdigest(),
            **SOURCES[name],
            **card_from_audio(x, rate),
        }
        out = wav.with_suffix(".json")
        out.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        a, b = card["bandwidth"], card["activity"]
        print(f"{out.name}: {card['duration_s']:.2f} s at {rate} Hz, above 4 kHz {a['above_4k_db']} dB, "
              f"above 8 kHz {a['above_8k_db']} dB, speech {b['speech_share']:.0%} in {len(b['segments_ms'])} segments")


if __name__ == "__main__":
    main()
