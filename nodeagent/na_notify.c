/* na_notify.c - see na_notify.h. */
#include "na_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct na_notify {
	int fd;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	size_t req_size; /* bytes to zero before each receive */
	size_t resp_size;
};

/* libseccomp allocates at least the kernel's reported sizes; zero exactly
 * what the kernel will check (it rejects a non-zero receive buffer). */
static void notif_sizes(size_t *req, size_t *resp)
{
	struct seccomp_notif_sizes sz;
	*req = sizeof(struct seccomp_notif);
	*resp = sizeof(struct seccomp_notif_resp);
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0) {
		if (sz.seccomp_notif > *req)
			*req = sz.seccomp_notif;
		if (sz.seccomp_notif_resp > *resp)
			*resp = sz.seccomp_notif_resp;
	}
}

na_notify *na_notify_new(int fd, char *err, size_t errlen)
{
	na_notify *n = calloc(1, sizeof *n);
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->fd = fd;
	int rc = seccomp_notify_alloc(&n->req, &n->resp);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp_notify_alloc: %s", strerror(-rc));
		free(n);
		return NULL;
	}
	notif_sizes(&n->req_size, &n->resp_size);
	return n;
}

void na_notify_free(na_notify *n)
{
	if (!n)
		return;
	if (n->fd >= 0)
		close(n->fd);
	seccomp_notify_free(n->req, n->resp);
	free(n);
}

int na_notify_fd(const na_notify *n)
{
	return n->fd;
}

int na_notify_release_fd(na_notify *n)
{
	int fd = n->fd;
	n->fd = -1;
	return fd;
}

/* Linux 6.6 uapi; Debian 12's headers (6.1) predate it. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

int na_notify_set_sync_wakeup(na_notify *n)
{
	if (n->fd < 0)
		return -EBADF;
	return ioctl(n->fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0
	           ? 0
	           : -errno;
}

int na_notify_receiver_realtime(void)
{
	struct sched_param sp = {.sched_priority = 1};
	return sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0 ? 0 : -errno;
}

/* libseccomp 2.5.4 returns -ECANCELED for any ioctl failure; the real
 * cause is errno. */
static int ioctl_error(int rc)
{
	if (rc == -ECANCELED && errno != 0)
		return -errno;
	return rc;
}

int na_notify_receive(na_notify *n, na_notify_req *out)
{
	if (n->fd < 0)
		return -EBADF;
	memset(n->req, 0, n->req_size);
	errno = 0;
	int rc = seccomp_notify_receive(n->fd, n->req);
	if (rc < 0)
		return ioctl_error(rc);
	memset(out, 0, sizeof *out);
	out->id = n->req->id;
	out->pid = (pid_t)n->req->pid;
	out->nr = n->req->data.nr;
	out->arch = n->req->data.arch;
	out->instruction_pointer = n->req->data.instruction_pointer;
	for (int i = 0; i < 6; i++)
		out->args[i] = n->req->data.args[i];
	return 0;
}

int na_notify_respond(na_notify *n, uint64_t id, int error)
{
	if (n->fd < 0)
		return -EBADF;
	memset(n->resp, 0, n->resp_size);
	n->resp->id = id;
	n->resp->val = 0;
	if (error) {
		n->resp->error = -error;
		n->resp->flags = 0;
	} else {
		n->resp->error = 0;
		n->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	}
	errno = 0;
	int rc = seccomp_notify_respond(n->fd, n->resp);
	if (rc < 0)
		return ioctl_error(rc);
	return 0;
}

int na_notify_id_valid_fd(int fd, uint64_t id)
{
	return seccomp_notify_id_valid(fd, id) == 0 ? 0 : -ENOENT;
}

int na_notify_id_valid(const na_notify *n, uint64_t id)
{
	return na_notify_id_valid_fd(n->fd, id);
}

na_syscall_kind na_notify_syscall_kind(const na_notify_req *req)
{
	if (req->arch != seccomp_arch_native())
		return NA_SYSCALL_OTHER;
	if (req->nr == __NR_execve)
		return NA_SYSCALL_EXECVE;
	if (req->nr == __NR_execveat)
		return NA_SYSCALL_EXECVEAT;
	return NA_SYSCALL_OTHER;
}

int na_notify_install_exec_filter(int *fd_out, char *err, size_t errlen)
{
	int rc;
	scmp_filter_ctx ctx = NULL;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = -errno;
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		goto fail;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		rc = -ENOMEM;
		snprintf(err, errlen, "seccomp_init failed");
		goto fail;
	}
	rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execveat), 0);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp_rule_add(SCMP_ACT_NOTIFY): %s", strerror(-rc));
		goto fail;
	}
	rc = seccomp_load(ctx);
	if (rc < 0) {
		rc = ioctl_error(rc);
		snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
		goto fail;
	}
	rc = seccomp_notify_fd(ctx);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp_notify_fd: %s", strerror(-rc));
		goto fail;
	}
	*fd_out = rc;
	seccomp_release(ctx);
	return 0;
fail:
	if (ctx)
		seccomp_release(ctx);
	return rc < 0 ? rc : -EINVAL;
}
