/*
 * fake_ca.h - a throwaway certificate authority for tests: a CA, a server
 * certificate for 127.0.0.1/localhost and a client certificate, all signed
 * by the CA (ECDSA P-256, valid for a day), as PEM in memory and as files
 * in a fresh temporary directory.
 *
 * ts_pki.h (the server's tests) issues server certificates to files; this
 * one also issues a client certificate (clientAuth, for kubeconfig
 * client-certificate tests), keeps every PEM in memory (kubeconfig *-data
 * fields, libmicrohttpd's in-memory options) and adds an unrelated second
 * CA for verification-failure tests.
 *
 * Thread-safety: create/destroy from one thread; the result is read-only.
 * Ownership: fake_ca_destroy frees the strings and removes the directory
 * with every file in it.
 */
#ifndef FAKE_CA_H
#define FAKE_CA_H

#include <stddef.h>

typedef struct fake_ca {
	char dir[256]; /* temporary directory holding the files below */
	char *ca_pem, *server_cert_pem, *server_key_pem, *client_cert_pem, *client_key_pem;
	char ca_file[320], server_cert_file[320], server_key_file[320], client_cert_file[320],
	    client_key_file[320];
	/* A second, unrelated CA: a client trusting only it must refuse. */
	char *other_ca_pem;
	char other_ca_file[320];
} fake_ca;

/* client_cn: the client certificate's common name (the user name). */
int fake_ca_create(fake_ca *ca, const char *client_cn, char *err, size_t errlen);
void fake_ca_destroy(fake_ca *ca);
/* Writes `data` to `dir`/`name`; the path goes to out. 0 or -errno. */
int fake_ca_write_file(const char *dir, const char *name, const char *data, char *out,
                       size_t outlen);

#endif
