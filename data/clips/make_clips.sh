#!/bin/sh
# Regenerate the speech clips in this folder from texts/<voice>-<topic>.txt with Debian's flite.
# Each line of a text file is one sentence, synthesised separately; the sentences are joined
# with real digital silence (gaps below, in seconds) so DTX and VAD have pauses to work with,
# and 0.3 s of silence lead in and trail out. Output: <voice>-<topic>.wav, 16 kHz mono PCM16.
# Needs: flite (voices slt, rms, awb are built in), sox.  Usage: sh data/clips/make_clips.sh
set -eu
cd "$(dirname "$0")"
GAPS="0.8 0.6 1.0 0.7"   # pause after sentence 1, 2, 3, ... (cycled)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sox -n -r 16000 -c 1 -b 16 "$tmp/edge.wav" trim 0 0.3
for text in texts/*.txt; do
    name=$(basename "$text" .txt)
    voice=${name%%-*}
    parts="$tmp/edge.wav"
    i=0
    while IFS= read -r sentence || [ -n "$sentence" ]; do
        [ -n "$sentence" ] || continue
        if [ "$i" -gt 0 ]; then
            gap=$(echo $GAPS | cut -d' ' -f$(( (i - 1) % 4 + 1 )))
            sox -n -r 16000 -c 1 -b 16 "$tmp/gap$i.wav" trim 0 "$gap"
            parts="$parts $tmp/gap$i.wav"
        fi
        flite -voice "$voice" -t "$sentence" -o "$tmp/s$i.raw.wav"
        # flite pads each utterance with ~0.15-0.2 s of near-silence: trim it (threshold 0.5 %
        # of full scale), keep 50 ms of margin, so the gaps below are the real pauses. flite's
        # output is 16 kHz mono PCM16 for these voices; the format is forced anyway.
        sox "$tmp/s$i.raw.wav" -r 16000 -c 1 -b 16 "$tmp/s$i.wav" \
            silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse pad 0.05 0.05
        parts="$parts $tmp/s$i.wav"
        i=$((i + 1))
    done < "$text"
    # shellcheck disable=SC2086
    sox $parts "$tmp/edge.wav" -r 16000 -c 1 -b 16 -e signed-integer "$name.wav"
    echo "$name.wav: $(soxi -D "$name.wav") s"
done
