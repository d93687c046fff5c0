#!/usr/bin/env bash
# kcat has no way to create a topic with N partitions (no CreateTopics).
echo "UNSUPPORTED: kcat cannot create topics (CreateTopics)"
exit 3
