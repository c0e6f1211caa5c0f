/*
 * A fake worker for the unit suites that serve real connections (test_conn,
 * test_lifecycle): a listener on 127.0.0.1 with a kernel-chosen port, and a
 * struct qln_worker around it with everyday connection settings and the
 * suite's own C app. Each test runs in its own forked process, so one of
 * each is all a suite needs.
 */
#ifndef QILIN_TEST_FAKEWORKER_H
#define QILIN_TEST_FAKEWORKER_H

#include <qilin/plugin.h>

#include "core/listener.h"
#include "core/worker.h"

/* Opens L (non-blocking, listening) and sets W up to serve it with APP. */
void fake_worker_init(struct qln_worker *w, struct listener *l, const struct qln_app_ops *app);

/* A blocking client socket connected to L, with a 5 s receive timeout. */
int fake_client(const struct listener *l);

#endif
