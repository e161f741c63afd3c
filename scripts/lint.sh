#!/usr/bin/env bash
# Banned functions, formatting, and cppcheck over the project's C sources.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
src=$(git ls-files '*.c' '*.h' 2>/dev/null || find common webhook nodeagent tests bench -name '*.[ch]')
banned=$(grep -nHE '\b(gets|sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|system|popen)[[:space:]]*\(' $src | grep -vE '\b(snprintf|vsnprintf)\b' || true)
if [ -n "$banned" ]; then echo "banned functions:"; echo "$banned"; status=1; fi
if command -v clang-format >/dev/null; then
	# Captured first: with pipefail, clang-format's own failure status would
	# otherwise hide the findings from the test below.
	unformatted=$(clang-format --dry-run -Werror $src 2>&1 | head -40)
	if [ -n "$unformatted" ]; then echo "$unformatted"; echo "clang-format: run 'make format'"; status=1; fi
else
	echo "clang-format missing: run 'make deps'"; status=1
fi
if command -v cppcheck >/dev/null; then
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
		--inline-suppr --suppress=missingIncludeSystem -Icommon -Iwebhook -Inodeagent \
		common webhook nodeagent || status=1
else
	echo "cppcheck missing: run 'make deps'"; status=1
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
