/*
 * wh_cli.h - the webhook's subcommands, each a main-like function taking the
 * arguments after the program name (argv[0] is the subcommand).
 * Thread-safety: called once from main. Ownership: n/a.
 */
#ifndef WH_CLI_H
#define WH_CLI_H

/* `check`: offline manifest check; returns the process exit status. */
int wh_check_main(int argc, char **argv);
/* `serve`: the admission server (docs/server.md); returns the exit status
 * (0 after a SIGTERM drain, 1 start-up failure, 2 usage). */
int wh_serve_main(int argc, char **argv);

#endif
