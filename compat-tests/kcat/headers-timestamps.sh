#!/usr/bin/env bash
# kcat can only attach the same headers (-H) to every message and cannot set
# per-message timestamps from input, so this scenario is not expressed here.
echo "UNSUPPORTED: kcat cannot set per-message headers/timestamps"
exit 3
