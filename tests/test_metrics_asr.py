"""WER of the offline recogniser on known transcripts (the clips' texts)."""

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("jiwer")

from translab.media.clips import load_clip  # noqa: E402
from translab.metrics.asr import recognise, wer  # noqa: E402


def test_wer_counts_substitutions_deletions_and_insertions_over_reference_words():
    assert wer("Take the second exit.", "take the second exit") == 0.0
    assert wer("take the second exit", "take a second") == pytest.approx(2 / 4)  # 1 sub + 1 del
    assert wer("take the exit", "take the the exit now") == pytest.approx(2 / 3)  # 2 insertions
    assert wer("take the exit", "") == 1.0


def test_recogniser_transcribes_a_clean_clip_with_its_known_baseline():
    # awb-directions is recognised word for word; slt-weather has 3 to 7 errors in 20 words (the
    # recogniser is sensitive to the last bit: truncating instead of rounding to int16 gives 3, not 7).
    text = open("data/clips/texts/awb-directions.txt").read()
    assert wer(text, recognise(load_clip("awb-directions", 16000), 16000)) == 0.0
    weather = open("data/clips/texts/slt-weather.txt").read()
    assert 3 / 20 <= wer(weather, recognise(load_clip("slt-weather", 16000), 16000)) <= 7 / 20


def test_noise_is_not_words_and_damaged_audio_scores_worse():
    text = open("data/clips/texts/awb-directions.txt").read()
    clip = load_clip("awb-directions", 16000)
    chopped = clip.copy()
    for i in range(0, len(chopped), 3200):  # 100 ms of every 200 ms silenced
        chopped[i:i + 1600] = 0
    assert wer(text, recognise(chopped, 16000)) > 0.3
    # digital silence: at most a hallucinated short word (PocketSphinx says "i'm"), none of the text
    heard = recognise(np.zeros(16000, np.float32), 16000)
    assert len(heard.split()) <= 1 and wer(text, heard) >= 1.0
