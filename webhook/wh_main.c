/*
 * wh_main.c - `codeframe-webhook` entry point: dispatches subcommands.
 * Thread-safety: runs on the main thread only. Ownership: n/a.
 */
#include <stdio.h>
#include <string.h>

#include "wh_cli.h"

static void usage(FILE *f)
{
	fputs("usage: codeframe-webhook COMMAND [OPTIONS]\n"
	      "commands:\n"
	      "  check [--profile baseline|restricted|worker] [--config FILE] [-o text|json] PATH...\n"
	      "        check manifests offline (exit 0 pass, 1 violations, 2 error)\n"
	      "  serve [--config FILE] [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE]\n"
	      "        [--profile NAME] [--mode enforce|warn|audit] [--network-policies FILE...]\n"
	      "        [--probe-listen ADDR:PORT]\n"
	      "        the HTTPS admission webhook (docs/server.md)\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "check"))
		return wh_check_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "serve"))
		return wh_serve_main(argc - 1, argv + 1);
	fprintf(stderr, "codeframe-webhook: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
