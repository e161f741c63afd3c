/*
 * ts_fixtures.h - pod fixtures shared by the admission tests (in-process,
 * tests/test_wh_admission.c) and the server tests (over HTTPS,
 * tests/test_wh_serve.c), so both judge the same pods.
 *
 * Thread-safety: constants only. Ownership: static strings.
 */
#ifndef TS_FIXTURES_H
#define TS_FIXTURES_H

/* A worker pod spec (JSON) that passes the worker profile when the
 * namespace has default-deny ingress and DNS-only egress policies. */
extern const char ts_worker_spec[];
/* Violates many checks: root, writable root fs, no limits, no drop. */
extern const char ts_violating_spec[];
/* The worker pod's labels (JSON object). */
extern const char ts_worker_labels[];

#endif
