/* Tests for na_profile: the worker seccomp profile and its install. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "cf_buf.h"
#include "na_profile.h"

#define LISTENER "/run/codeframe-guard/agent.sock"

static cJSON *build_native(void)
{
	char err[256] = "";
	cJSON *p = NULL;
	int rc = na_profile_build(SCMP_ARCH_NATIVE, LISTENER, &p, err, sizeof err);
	cr_assert_eq(rc, 0, "build failed: %s", err);
	cr_assert_not_null(p);
	return p;
}

/* The rule whose names contain `name`, or NULL; counts how many rules do. */
static cJSON *rule_for(cJSON *p, const char *name, int *count)
{
	cJSON *found = NULL, *rule;
	*count = 0;
	cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(p, "syscalls"))
	{
		cJSON *n;
		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(rule, "names"))
		{
			if (strcmp(n->valuestring, name) == 0) {
				found = rule;
				(*count)++;
			}
		}
	}
	return found;
}

static const char *action_of(cJSON *rule)
{
	return cJSON_GetObjectItemCaseSensitive(rule, "action")->valuestring;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup_dir(const char *path)
{
	cr_assert(strncmp(path, "/tmp/", 5) == 0);
	cr_assert_eq(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

Test(na_profile, top_level_keys)
{
	cJSON *p = build_native();
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(p, "defaultAction")->valuestring,
	                 "SCMP_ACT_ERRNO");
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(p, "defaultErrnoRet")->valueint, EPERM);
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(p, "listenerPath")->valuestring,
	                 LISTENER);
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(p, "listenerMetadata")->valuestring,
	                 NA_PROFILE_METADATA);
	cJSON *arches = cJSON_GetObjectItemCaseSensitive(p, "architectures");
	cr_assert_eq(cJSON_GetArraySize(arches), 1);
	cr_assert_str_eq(cJSON_GetArrayItem(arches, 0)->valuestring,
	                 na_profile_arch_name(seccomp_arch_native()));
	cJSON_Delete(p);
}

Test(na_profile, no_docker_only_keys)
{
	char err[256];
	char *text = NULL;
	cr_assert_eq(na_profile_render(SCMP_ARCH_NATIVE, LISTENER, &text, err, sizeof err), 0);
	cr_assert_null(strstr(text, "archMap"));
	cr_assert_null(strstr(text, "includes"));
	cr_assert_null(strstr(text, "excludes"));
	cr_assert_null(strstr(text, "minKernel"));
	cr_assert_eq(text[strlen(text) - 1], '\n');
	free(text);
}

/* Every name in the generated profile is a real syscall of the native arch. */
Test(na_profile, every_name_resolves_natively)
{
	cJSON *p = build_native(), *rule;
	int names = 0;
	cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(p, "syscalls"))
	{
		cJSON *n = cJSON_GetObjectItemCaseSensitive(rule, "names");
		cr_assert(cJSON_GetArraySize(n) > 0, "empty rule");
		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(rule, "names"))
		{
			int nr = seccomp_syscall_resolve_name(n->valuestring);
			cr_assert(nr >= 0, "%s does not resolve natively (%d)", n->valuestring, nr);
			names++;
		}
	}
	cr_assert(names > 250, "only %d names", names);
	cJSON_Delete(p);
}

/* The architecture-independent table has no typo: libseccomp knows every
 * name for some architecture (unknown names resolve to __NR_SCMP_ERROR). */
Test(na_profile, table_names_known_to_libseccomp)
{
	size_t n = 0;
	const char *const *names = na_profile_allow_names(&n);
	cr_assert(n > 300);
	for (size_t i = 0; i < n; i++)
		cr_assert_neq(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, names[i]),
		              __NR_SCMP_ERROR, "unknown syscall name %s", names[i]);
}

Test(na_profile, exec_is_notified)
{
	cJSON *p = build_native();
	int count;
	cJSON *r = rule_for(p, "execve", &count);
	cr_assert_eq(count, 1);
	cr_assert_str_eq(action_of(r), "SCMP_ACT_NOTIFY");
	r = rule_for(p, "execveat", &count);
	cr_assert_eq(count, 1);
	cr_assert_str_eq(action_of(r), "SCMP_ACT_NOTIFY");
	cJSON_Delete(p);
}

Test(na_profile, clone3_enosys)
{
	cJSON *p = build_native();
	int count;
	cJSON *r = rule_for(p, "clone3", &count);
	cr_assert_eq(count, 1);
	cr_assert_str_eq(action_of(r), "SCMP_ACT_ERRNO");
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "errnoRet")->valueint, ENOSYS);
	cJSON_Delete(p);
}

Test(na_profile, dangerous_calls_denied_not_allowed)
{
	static const char *const denied[] = {
	    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
	    "kcmp",   "io_uring_setup",   "io_uring_enter",    "io_uring_register"};
	cJSON *p = build_native();
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		int count;
		rule_for(p, denied[i], &count);
		/* Left to defaultAction (ERRNO/EPERM), checked in top_level_keys. */
		cr_assert_eq(count, 0, "%s appears in %d rules", denied[i], count);
	}
	cJSON_Delete(p);
}

Test(na_profile, privileged_calls_absent)
{
	static const char *const absent[] = {"mount",
	                                     "umount2",
	                                     "unshare",
	                                     "setns",
	                                     "bpf",
	                                     "init_module",
	                                     "reboot",
	                                     "perf_event_open",
	                                     "open_by_handle_at",
	                                     "chroot",
	                                     "userfaultfd",
	                                     "keyctl",
	                                     "add_key",
	                                     "settimeofday",
	                                     "swapon"};
	cJSON *p = build_native();
	for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
		int count;
		rule_for(p, absent[i], &count);
		cr_assert_eq(count, 0, "%s must be left to the default action", absent[i]);
	}
	cJSON_Delete(p);
}

Test(na_profile, clone_masks_namespace_flags)
{
	cJSON *p = build_native();
	int count;
	cJSON *r = rule_for(p, "clone", &count);
	cr_assert_eq(count, 1);
	cr_assert_str_eq(action_of(r), "SCMP_ACT_ALLOW");
	cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "args"), 0);
	cr_assert_not_null(a);
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(a, "op")->valuestring,
	                 "SCMP_CMP_MASKED_EQ");
	cr_assert_eq((unsigned long)cJSON_GetObjectItemCaseSensitive(a, "value")->valuedouble,
	             0x7E020000ul);
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(a, "valueTwo")->valuedouble, 0.0);
	cJSON_Delete(p);
}

Test(na_profile, socket_excludes_vsock)
{
	cJSON *p = build_native();
	int count;
	cJSON *r = rule_for(p, "socket", &count);
	cr_assert_eq(count, 1);
	cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "args"), 0);
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(a, "op")->valuestring, "SCMP_CMP_NE");
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(a, "value")->valueint, 40);
	cJSON_Delete(p);
}

Test(na_profile, common_calls_allowed)
{
	static const char *const needed[] = {"read",       "write",     "openat", "mmap",
	                                     "exit_group", "wait4",     "futex",  "rt_sigreturn",
	                                     "getdents64", "arch_prctl"};
	cJSON *p = build_native();
	for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
		if (seccomp_syscall_resolve_name(needed[i]) < 0)
			continue; /* arch_prctl exists on x86_64 only */
		int count;
		cJSON *r = rule_for(p, needed[i], &count);
		cr_assert_eq(count, 1, "%s", needed[i]);
		cr_assert_str_eq(action_of(r), "SCMP_ACT_ALLOW");
	}
	cJSON_Delete(p);
}

/* Another architecture is flattened with its own syscall set. */
Test(na_profile, aarch64_flattened)
{
	char err[256];
	cJSON *p = NULL, *rule;
	cr_assert_eq(na_profile_build(SCMP_ARCH_AARCH64, LISTENER, &p, err, sizeof err), 0, "%s",
	             err);
	cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(p, "syscalls"))
	{
		cJSON *n;
		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(rule, "names")) cr_assert(
		    seccomp_syscall_resolve_name_arch(SCMP_ARCH_AARCH64, n->valuestring) >= 0, "%s",
		    n->valuestring);
	}
	int count;
	rule_for(p, "open", &count);
	cr_assert_eq(count, 0);
	rule_for(p, "arch_prctl", &count);
	cr_assert_eq(count, 0);
	cr_assert_not_null(rule_for(p, "openat", &count));
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "architectures"), 0)
	                     ->valuestring,
	                 "SCMP_ARCH_AARCH64");
	cJSON_Delete(p);
}

static uint32_t action_value(cJSON *rule)
{
	const char *a = action_of(rule);
	cJSON *e = cJSON_GetObjectItemCaseSensitive(rule, "errnoRet");
	if (strcmp(a, "SCMP_ACT_ALLOW") == 0)
		return SCMP_ACT_ALLOW;
	if (strcmp(a, "SCMP_ACT_NOTIFY") == 0)
		return SCMP_ACT_NOTIFY;
	cr_assert_str_eq(a, "SCMP_ACT_ERRNO");
	return SCMP_ACT_ERRNO((uint16_t)(e ? e->valueint : EPERM));
}

static enum scmp_compare op_value(const char *op)
{
	if (strcmp(op, "SCMP_CMP_NE") == 0)
		return SCMP_CMP_NE;
	if (strcmp(op, "SCMP_CMP_EQ") == 0)
		return SCMP_CMP_EQ;
	cr_assert_str_eq(op, "SCMP_CMP_MASKED_EQ");
	return SCMP_CMP_MASKED_EQ;
}

/* The profile compiles into a libseccomp filter exactly as a runtime would
 * build it: every rule is accepted (no conflicting actions, valid args). */
Test(na_profile, compiles_with_libseccomp)
{
	cJSON *p = build_native(), *rule;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	cr_assert_not_null(ctx);
	cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(p, "syscalls"))
	{
		uint32_t action = action_value(rule);
		cJSON *args = cJSON_GetObjectItemCaseSensitive(rule, "args"), *n;
		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(rule, "names"))
		{
			int nr = seccomp_syscall_resolve_name(n->valuestring);
			int rc;
			if (args) {
				cJSON *a = cJSON_GetArrayItem(args, 0);
				struct scmp_arg_cmp cmp = {
				    .arg = (unsigned)cJSON_GetObjectItem(a, "index")->valueint,
				    .op = op_value(cJSON_GetObjectItem(a, "op")->valuestring),
				    .datum_a =
				        (scmp_datum_t)cJSON_GetObjectItem(a, "value")->valuedouble,
				    .datum_b = (scmp_datum_t)cJSON_GetObjectItem(a, "valueTwo")
				                   ->valuedouble,
				};
				rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp);
			} else {
				rc = seccomp_rule_add(ctx, action, nr, 0);
			}
			cr_assert_eq(rc, 0, "%s: %s", n->valuestring, strerror(-rc));
		}
	}
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cr_assert_eq(seccomp_export_bpf(ctx, devnull), 0);
	close(devnull);
	seccomp_release(ctx);
	cJSON_Delete(p);
}

/* Negative cases. */

Test(na_profile, relative_listener_rejected)
{
	char err[256] = "";
	cJSON *p = NULL;
	cr_assert_eq(na_profile_build(0, "run/agent.sock", &p, err, sizeof err), -EINVAL);
	cr_assert_null(p);
	cr_assert_not_null(strstr(err, "absolute"));
}

Test(na_profile, empty_and_null_listener_rejected)
{
	char err[256] = "";
	cJSON *p = NULL;
	cr_assert_eq(na_profile_build(0, "", &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_profile_build(0, NULL, &p, err, sizeof err), -EINVAL);
	cr_assert_null(p);
}

Test(na_profile, long_listener_rejected)
{
	char err[256] = "", path[200];
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	char *text = NULL;
	cr_assert_eq(na_profile_render(0, path, &text, err, sizeof err), -EINVAL);
	cr_assert_null(text);
	cr_assert_not_null(strstr(err, "longer"));
}

Test(na_profile, unsupported_arch_rejected)
{
	char err[256] = "";
	cJSON *p = NULL;
	cr_assert_eq(na_profile_build(SCMP_ARCH_X86, LISTENER, &p, err, sizeof err), -ENOTSUP);
	cr_assert_null(p);
	cr_assert_null(na_profile_arch_name(SCMP_ARCH_ARM));
}

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/na_profile_test.XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

Test(na_profile, install_writes_atomically)
{
	char *d = make_tmpdir(), err[512] = "", path[512];
	char sub[300];
	snprintf(sub, sizeof sub, "%s/seccomp", d);
	cr_assert_eq(na_profile_install(sub, LISTENER, err, sizeof err), 0, "%s", err);
	snprintf(path, sizeof path, "%s/codeframe/worker.json", sub);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
	cf_buf b;
	cr_assert_eq(cf_read_file(path, 1u << 20, &b, err, sizeof err), 0);
	char *want = NULL;
	cr_assert_eq(na_profile_render(0, LISTENER, &want, err, sizeof err), 0);
	cr_assert_str_eq(b.data, want);
	free(want);
	cf_buf_free(&b);
	/* Reinstall with another listener replaces it; no temporary file left. */
	cr_assert_eq(na_profile_install(sub, "/run/other.sock", err, sizeof err), 0, "%s", err);
	cr_assert_eq(cf_read_file(path, 1u << 20, &b, err, sizeof err), 0);
	cr_assert_not_null(strstr(b.data, "/run/other.sock"));
	cf_buf_free(&b);
	snprintf(path, sizeof path, "%s/codeframe", sub);
	DIR *dir = opendir(path);
	cr_assert_not_null(dir);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
			entries++;
	closedir(dir);
	cr_assert_eq(entries, 1);
	cleanup_dir(d);
	free(d);
}

Test(na_profile, install_dir_is_a_file)
{
	char *d = make_tmpdir(), err[512] = "", file[300];
	snprintf(file, sizeof file, "%s/plain", d);
	int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(na_profile_install(file, LISTENER, err, sizeof err), -ENOTDIR);
	cr_assert_not_null(strstr(err, "not a directory"), "%s", err);
	cleanup_dir(d);
	free(d);
}

Test(na_profile, install_codeframe_is_a_file)
{
	char *d = make_tmpdir(), err[512] = "", file[300];
	snprintf(file, sizeof file, "%s/codeframe", d);
	int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(na_profile_install(d, LISTENER, err, sizeof err), -ENOTDIR);
	cleanup_dir(d);
	free(d);
}

Test(na_profile, install_unwritable_dir)
{
	char err[512] = "";
	/* procfs refuses new directories even to root. */
	int rc = na_profile_install("/proc/self", LISTENER, err, sizeof err);
	cr_assert(rc < 0);
	cr_assert_not_null(strstr(err, "/proc/self/codeframe"), "%s", err);
}

Test(na_profile, install_missing_parent)
{
	char err[512] = "";
	int rc = na_profile_install("/nonexistent-codeframe/a/b", LISTENER, err, sizeof err);
	cr_assert_eq(rc, -ENOENT);
	cr_assert_not_null(strstr(err, "cannot create directory"), "%s", err);
}

Test(na_profile, install_empty_dir_and_bad_listener)
{
	char err[512] = "";
	cr_assert_eq(na_profile_install("", LISTENER, err, sizeof err), -EINVAL);
	cr_assert_eq(na_profile_install("/tmp", "relative", err, sizeof err), -EINVAL);
}

Test(na_profile, cli_usage_errors)
{
	char a0[] = "profile", bad[] = "--bogus", extra[] = "extra";
	char *argv1[] = {a0, bad, NULL};
	cr_assert_eq(na_profile_cmd_profile(2, argv1), 2);
	char *argv2[] = {a0, extra, NULL};
	cr_assert_eq(na_profile_cmd_profile(2, argv2), 2);
	char i0[] = "install-profile", lis[] = "--listener", rel[] = "rel";
	char *argv3[] = {i0, lis, rel, NULL};
	cr_assert_eq(na_profile_cmd_install(3, argv3), 1);
}

Test(na_profile, install_target_is_a_directory)
{
	char *d = make_tmpdir(), err[512] = "", path[300];
	snprintf(path, sizeof path, "%s/codeframe", d);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/codeframe/worker.json", d);
	cr_assert_eq(mkdir(path, 0755), 0);
	int rc = na_profile_install(d, LISTENER, err, sizeof err);
	cr_assert(rc < 0);
	cr_assert_not_null(strstr(err, "cannot rename"), "%s", err);
	/* The temporary file was removed again. */
	snprintf(path, sizeof path, "%s/codeframe", d);
	DIR *dir = opendir(path);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(dir);
	cr_assert_eq(entries, 1);
	cleanup_dir(d);
	free(d);
}

Test(na_profile, install_path_too_long)
{
	char err[512] = "", dir[5000];
	memset(dir, 'd', sizeof dir - 1);
	dir[0] = '/';
	dir[sizeof dir - 1] = '\0';
	cr_assert_eq(na_profile_install(dir, LISTENER, err, sizeof err), -ENAMETOOLONG);
	cr_assert_not_null(strstr(err, "too long"));
}

Test(na_profile, install_with_long_listener_writes_nothing)
{
	char *d = make_tmpdir(), err[512] = "", lis[200], path[300];
	memset(lis, 'l', sizeof lis - 1);
	lis[0] = '/';
	lis[sizeof lis - 1] = '\0';
	cr_assert_eq(na_profile_install(d, lis, err, sizeof err), -EINVAL);
	snprintf(path, sizeof path, "%s/codeframe", d);
	struct stat st;
	cr_assert_eq(stat(path, &st), -1, "nothing may be created for an invalid profile");
	cleanup_dir(d);
	free(d);
}

Test(na_profile, cli_help_and_missing_value)
{
	char a0[] = "profile", lis[] = "--listener";
	char *argv1[] = {a0, lis, NULL};
	cr_assert_eq(na_profile_cmd_profile(2, argv1), 2);
	char i0[] = "install-profile", dirf[] = "--dir";
	char *argv2[] = {i0, dirf, NULL};
	cr_assert_eq(na_profile_cmd_install(2, argv2), 2);
}
