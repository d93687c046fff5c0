#!/usr/bin/env bash
echo "UNSUPPORTED: kcat has no admin operations (configs, delete)"
exit 3
