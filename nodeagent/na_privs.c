/* na_privs.c - see na_privs.h. */
#include "na_privs.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cf_buf.h"

/* When /proc/sys/kernel/cap_last_cap cannot be read: the highest
 * capability known to recent kernels, plus headroom (EINVAL ends it). */
#define CAP_LAST_FALLBACK 63

static int last_cap(void)
{
	cf_buf b;
	char err[128];
	if (cf_read_file("/proc/sys/kernel/cap_last_cap", 64, &b, err, sizeof err) < 0)
		return CAP_LAST_FALLBACK;
	long v = strtol(b.data, NULL, 10);
	cf_buf_free(&b);
	return v > 0 && v <= CAP_LAST_FALLBACK ? (int)v : CAP_LAST_FALLBACK;
}

int na_privs_drop(char *err, size_t errlen)
{
	int last = last_cap();
	for (int cap = 0; cap <= last; cap++) {
		/* Only what is still there: a restarted policy side inherits the
		 * dropped set and no longer has CAP_SETPCAP to drop with. */
		if (cap == CAP_SYS_PTRACE ||
		    prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0) != 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) < 0 && errno != EINVAL) {
			int e = errno;
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s",
			         cap, strerror(e));
			return -e;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		int e = errno;
		snprintf(err, errlen, "cannot clear ambient capabilities: %s", strerror(e));
		return -e;
	}
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof data);
	data[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective = CAP_TO_MASK(CAP_SYS_PTRACE);
	data[CAP_TO_INDEX(CAP_SYS_PTRACE)].permitted = CAP_TO_MASK(CAP_SYS_PTRACE);
	if (syscall(SYS_capset, &hdr, data) < 0) {
		int e = errno;
		snprintf(err, errlen, "capset: %s", strerror(e));
		return -e;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(e));
		return -e;
	}
	return 0;
}
