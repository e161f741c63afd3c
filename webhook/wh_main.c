/*
 * wh_main.c - `codeframe-webhook` entry point: dispatches subcommands.
 * Each subcommand is a main-like function in wh_cli.h taking the arguments
 * after the program name; adding one is one row in `commands`.
 * Thread-safety: runs on the main thread only. Ownership: n/a.
 */
#include <stdio.h>
#include <string.h>

#include "wh_cli.h"

static const struct command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *usage;
} commands[] = {
    {"check", wh_check_main,
     "  check [--profile baseline|restricted|worker] [--config FILE] [-o text|json] PATH...\n"
     "        check manifests offline (exit 0 pass, 1 violations, 2 error);\n"
     "        docs/cli.md\n"},
    {"serve", wh_serve_main,
     "  serve [--config FILE] [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE]\n"
     "        [--profile NAME] [--mode enforce|warn|audit] [--network-policies FILE...]\n"
     "        [--kubeconfig FILE] [--probe-listen ADDR:PORT]\n"
     "        [--tls-secret NAMESPACE/NAME --webhook-config NAME --service NAME]\n"
     "        the HTTPS admission webhook (docs/server.md, docs/kube.md, docs/tls.md)\n"},
};

static void usage(FILE *f)
{
	fputs("usage: codeframe-webhook COMMAND [OPTIONS]\n"
	      "       codeframe-webhook COMMAND --help\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fputs(commands[i].usage, f);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "codeframe-webhook: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
