#!/bin/sh
# Regenerate the speech clips in this folder, then their activity/bandwidth cards (<clip>.json).
#
# 1. flite (English TTS): texts/<voice>-<topic>.txt -> <voice>-<topic>.wav, 16 kHz.
# 2. espeak-ng (German, Spanish TTS): texts/espeak-ng/<lang>-<topic>.txt -> espeak-<lang>-<topic>.wav,
#    22.05 kHz (espeak-ng's own rate).
# 3. Real human recordings shipped in Debian packages (fetched with `apt-get download`, unpacked
#    into a temporary folder, not installed):
#    - librivox-austen.wav: three LibriVox excerpts (public-domain reading of Sense and
#      Sensibility, ch. 1) from pocketsphinx-testdata, 16 kHz;
#    - human-channels-48k.wav: the ALSA speaker-test voice prompts ("Front Left", ...) from
#      alsa-utils, 48 kHz, full band.
# Each text line / recording is one utterance; utterances are joined with real digital silence
# (the gap lists below, in seconds, cycled) and 0.3 s of silence lead in and trail out.
# Output: mono PCM16 WAV. Then `make_cards.py` writes <clip>.json (VAD segments, bandwidth, licence).
# Needs: flite, espeak-ng, sox, apt-get (with package lists: apt-get update), dpkg, and translab's
# Python environment for the cards.  Usage: sh data/clips/make_clips.sh [python]
set -eu
cd "$(dirname "$0")"
# sox -R: repeatable mode (dither is seeded), so the same inputs give byte-identical files
sox() { command sox -R "$@"; }
PYTHON=${1:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# join NAME RATE "GAPS" PART...: PART files (already at RATE, mono PCM16) joined with the gaps.
join() {
    name=$1; rate=$2; gaps=$3; shift 3
    ngaps=$(echo $gaps | wc -w)
    sox -n -r "$rate" -c 1 -b 16 "$tmp/edge$rate.wav" trim 0 0.3
    parts="$tmp/edge$rate.wav"
    i=0
    for p in "$@"; do
        if [ "$i" -gt 0 ]; then
            gap=$(echo $gaps | cut -d' ' -f$(( (i - 1) % ngaps + 1 )))
            sox -n -r "$rate" -c 1 -b 16 "$tmp/gap$i.wav" trim 0 "$gap"
            parts="$parts $tmp/gap$i.wav"
        fi
        parts="$parts $p"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    sox $parts "$tmp/edge$rate.wav" -r "$rate" -c 1 -b 16 -e signed-integer "$name.wav"
    echo "$name.wav: $(soxi -D "$name.wav") s"
}

# trim IN OUT RATE: cut the synthesiser's leading/trailing near-silence (threshold 0.5 % of full
# scale), keep 50 ms of margin, so the gaps are the real pauses.
trim() {
    sox "$1" -r "$3" -c 1 -b 16 "$2" silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse pad 0.05 0.05
}

# 1. flite voices slt, rms, awb (built in); pauses 0.6-1.0 s.
for text in texts/*.txt; do
    name=$(basename "$text" .txt)
    voice=${name%%-*}
    i=0; files=""
    while IFS= read -r sentence || [ -n "$sentence" ]; do
        [ -n "$sentence" ] || continue
        flite -voice "$voice" -t "$sentence" -o "$tmp/s$i.raw.wav"
        trim "$tmp/s$i.raw.wav" "$tmp/$name-$i.wav" 16000
        files="$files $tmp/$name-$i.wav"; i=$((i + 1))
    done < "$text"
    # shellcheck disable=SC2086
    join "$name" 16000 "0.8 0.6 1.0 0.7" $files
done

# 2. espeak-ng: German (default male voice), Spanish (female variant f3); short and long pauses.
for text in texts/espeak-ng/*.txt; do
    name=$(basename "$text" .txt)
    lang=${name%%-*}
    case $lang in de) voice=de ;; es) voice=es+f3 ;; *) voice=$lang ;; esac
    i=0; files=""
    while IFS= read -r sentence || [ -n "$sentence" ]; do
        [ -n "$sentence" ] || continue
        espeak-ng -v "$voice" -w "$tmp/e$i.raw.wav" "$sentence"
        trim "$tmp/e$i.raw.wav" "$tmp/$name-$i.wav" 22050
        files="$files $tmp/$name-$i.wav"; i=$((i + 1))
    done < "$text"
    # shellcheck disable=SC2086
    join "espeak-$name" 22050 "0.3 1.6 0.5" $files
done

# 3. Real recordings from Debian packages (versions used: pocketsphinx-testdata
#    0.8+5prealpha+1-15, alsa-utils 1.2.8-1; other versions may ship other files).
(cd "$tmp" && apt-get download pocketsphinx-testdata alsa-utils >/dev/null)
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
lv=$tmp/root/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb
# the recordings keep their own (natural) pauses; joined with a short and a long one
join librivox-austen 16000 "0.4 1.5" "$lv-0880.wav" "$lv-0890.wav" "$lv-0930.wav"
al=$tmp/root/usr/share/sounds/alsa
for c in Front_Left Front_Center Front_Right Side_Left Side_Right Rear_Left Rear_Center Rear_Right; do
    trim "$al/$c.wav" "$tmp/$c.wav" 48000
done
join human-channels-48k 48000 "0.25 0.25 1.5 0.25 1.5 0.25 0.25" \
    "$tmp/Front_Left.wav" "$tmp/Front_Center.wav" "$tmp/Front_Right.wav" "$tmp/Side_Left.wav" \
    "$tmp/Side_Right.wav" "$tmp/Rear_Left.wav" "$tmp/Rear_Center.wav" "$tmp/Rear_Right.wav"

"$PYTHON" make_cards.py
