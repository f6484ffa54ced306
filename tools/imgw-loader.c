// SPDX-License-Identifier: MIT
/*
 * imgw-loader: loads the imgw BPF programs, pins them and their maps under
 * one directory (/sys/fs/bpf/imgw by default), attaches the sk_msg fan-out
 * program to the control sockmap and the XDP guard to an interface through
 * libxdp; removes exactly that again; shows what is loaded; and edits the
 * guard's blocklist. Every step is safe to run twice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <xdp/libxdp.h>

#include "imgw_fanout.skel.h"
#include "imgw_guard.skel.h"
#include "imgw_shared.h"
#include "log.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/imgw"
#define BPFFS_MOUNT "/sys/fs/bpf"

struct loader_opts {
	const char *pin_dir;
	const char *iface;
	__u32 syn_rate;
	__u32 syn_burst;
	__u16 port;
	__u32 ttl;
};

static const char *const fanout_maps[] = {
	"imgw_socks", "imgw_ctl", "imgw_members", "imgw_calls",
	"imgw_fo_stats",
};
static const char *const guard_maps[] = {
	"imgw_block_v4", "imgw_block_v6", "imgw_syn", "imgw_xdp_stats",
	"imgw_attach",
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgw-loader [--pin-dir DIR] [-v] COMMAND\n"
		"  load [--iface IFACE] [--syn-rate N] [--syn-burst N] [--port N]\n"
		"        load and pin the programs and maps; with --iface attach the\n"
		"        XDP guard (native mode, else generic). --syn-rate: new TCP\n"
		"        connections per second per source (0: no limit, default);\n"
		"        --syn-burst: SYNs allowed at once (default 10); --port: the\n"
		"        gateway port whose SYNs are limited (0: every port)\n"
		"  unload              detach and unpin what load created\n"
		"  status              show what is loaded, pinned and attached\n"
		"  block PREFIX [--ttl SEC]   drop traffic from PREFIX (addr[/len])\n"
		"  unblock PREFIX      remove a blocklist entry\n"
		"  stats               print the XDP and fan-out counters\n"
		"--pin-dir DIR: pin directory (default %s)\n", DEFAULT_PIN_DIR);
}

/* Folds library messages one level lower into our log. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt,
		      va_list ap)
{
	int lvl = level == LIBBPF_WARN ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
	char line[1024];
	size_t n;

	if (lvl > log_threshold)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = 0;
	log_write(lvl, "%s", line);
	return 0;
}

static void path_of(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static int pinned(const char *dir, const char *name)
{
	char path[256];

	path_of(path, sizeof(path), dir, name);
	return access(path, F_OK) == 0;
}

static int obj_get(const char *dir, const char *name)
{
	char path[256];
	int fd;

	path_of(path, sizeof(path), dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fd = -errno;
	return fd;
}

/* Mounts bpffs on /sys/fs/bpf unless it is there, and creates the pin dir. */
static int prepare_pin_dir(const char *dir)
{
	struct statfs st;
	int err;

	if (statfs(BPFFS_MOUNT, &st) == 0 && st.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", BPFFS_MOUNT, "bpf", 0, NULL) < 0) {
			err = -errno;
			pr_error("cannot mount bpffs on %s: %s", BPFFS_MOUNT, strerror(-err));
			return err;
		}
		printf("mounted bpffs on %s\n", BPFFS_MOUNT);
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		pr_error("cannot create pin directory %s: %s", dir, strerror(-err));
		return err;
	}
	return 0;
}

static int load_fanout(const struct loader_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->pin_dir);
	struct imgw_fanout *skel;
	char path[256];
	int err;

	if (pinned(o->pin_dir, "prog_fanout")) {
		printf("fan-out program already loaded (%s/prog_fanout)\n", o->pin_dir);
		return 0;
	}
	skel = imgw_fanout__open_opts(&oo);
	if (!skel) {
		err = -errno;
		pr_error("cannot open the fan-out BPF object: %s", strerror(-err));
		return err;
	}
	err = imgw_fanout__load(skel);
	if (err) {
		pr_error("cannot load the fan-out program: %s", strerror(-err));
		goto out_destroy;
	}
	err = bpf_prog_attach(bpf_program__fd(skel->progs.imgw_fanout),
			      bpf_map__fd(skel->maps.imgw_ctl),
			      BPF_SK_MSG_VERDICT, 0);
	if (err) {
		err = -errno;
		pr_error("cannot attach the fan-out program to map imgw_ctl: %s", strerror(-err));
		goto out_destroy;
	}
	path_of(path, sizeof(path), o->pin_dir, "prog_fanout");
	err = bpf_program__pin(skel->progs.imgw_fanout, path);
	if (err) {
		pr_error("cannot pin the fan-out program at %s: %s", path, strerror(-err));
		goto out_destroy;
	}
	printf("loaded the fan-out program, pinned %s and its maps, attached it to imgw_ctl\n", path);
out_destroy:
	imgw_fanout__destroy(skel);
	return err;
}

static int load_guard(const struct loader_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->pin_dir);
	struct imgw_guard *skel;
	char path[256];
	int err;

	if (pinned(o->pin_dir, "prog_guard")) {
		printf("XDP guard already loaded (%s/prog_guard); unload first to change its settings\n", o->pin_dir);
		return 0;
	}
	skel = imgw_guard__open_opts(&oo);
	if (!skel) {
		err = -errno;
		pr_error("cannot open the XDP guard BPF object: %s", strerror(-err));
		return err;
	}
	skel->rodata->syn_rate = o->syn_rate;
	skel->rodata->syn_burst = o->syn_burst;
	skel->rodata->gw_port = o->port;
	err = imgw_guard__load(skel);
	if (err) {
		pr_error("cannot load the XDP guard: %s", strerror(-err));
		goto out_destroy;
	}
	path_of(path, sizeof(path), o->pin_dir, "prog_guard");
	err = bpf_program__pin(skel->progs.imgw_guard, path);
	if (err) {
		pr_error("cannot pin the XDP guard at %s: %s", path, strerror(-err));
		goto out_destroy;
	}
	printf("loaded the XDP guard (syn-rate %u/s, syn-burst %u, port %u), pinned %s and its maps\n",
	       o->syn_rate, o->syn_burst, o->port, path);
out_destroy:
	imgw_guard__destroy(skel);
	return err;
}

static int attach_read(const char *dir, struct imgw_attach_info *info)
{
	__u32 zero = 0;
	int fd, err = 0;

	fd = obj_get(dir, "imgw_attach");
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, info))
		err = -errno;
	close(fd);
	return err;
}

static int attach_write(const char *dir, const struct imgw_attach_info *info)
{
	__u32 zero = 0;
	int fd, err = 0;

	fd = obj_get(dir, "imgw_attach");
	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &zero, info, BPF_ANY))
		err = -errno;
	close(fd);
	return err;
}

/* Native first; generic when the driver has no native XDP. */
static int attach_guard(const struct loader_opts *o)
{
	struct imgw_attach_info info = { 0 };
	struct xdp_program *xp;
	int ifindex, prog_fd, err;

	ifindex = if_nametoindex(o->iface);
	if (!ifindex) {
		err = -errno;
		pr_error("cannot find interface %s: %s", o->iface, strerror(-err));
		return err;
	}
	if (!attach_read(o->pin_dir, &info) && info.ifindex) {
		printf("XDP guard already attached to ifindex %u; unload to move it\n", info.ifindex);
		return 0;
	}
	prog_fd = obj_get(o->pin_dir, "prog_guard");
	if (prog_fd < 0) {
		pr_error("cannot open %s/prog_guard: %s", o->pin_dir, strerror(-prog_fd));
		return prog_fd;
	}
	xp = xdp_program__from_fd(prog_fd);
	err = libxdp_get_error(xp);
	if (err) {
		pr_error("libxdp cannot use the XDP guard (fd %d): %s", prog_fd, strerror(-err));
		close(prog_fd);
		return err;
	}
	info.ifindex = ifindex;
	info.mode = XDP_MODE_NATIVE;
	err = xdp_program__attach(xp, ifindex, XDP_MODE_NATIVE, 0);
	if (err) {
		pr_info("native XDP on %s failed (%s); trying generic mode", o->iface, strerror(-err));
		info.mode = XDP_MODE_SKB;
		err = xdp_program__attach(xp, ifindex, XDP_MODE_SKB, 0);
	}
	if (err) {
		pr_error("cannot attach the XDP guard to %s: %s", o->iface, strerror(-err));
	} else {
		err = attach_write(o->pin_dir, &info);
		printf("attached the XDP guard to %s (ifindex %d) in %s mode\n", o->iface, ifindex,
		       info.mode == XDP_MODE_NATIVE ? "native" : "generic");
	}
	xdp_program__close(xp);
	close(prog_fd);
	return err;
}

static int cmd_load(const struct loader_opts *o)
{
	int err;

	err = prepare_pin_dir(o->pin_dir);
	if (!err)
		err = load_fanout(o);
	if (!err)
		err = load_guard(o);
	if (!err && o->iface)
		err = attach_guard(o);
	return err;
}

static int detach_guard(const char *dir)
{
	struct imgw_attach_info info = { 0 };
	struct xdp_program *xp;
	char name[IF_NAMESIZE] = "?";
	int prog_fd, err;

	if (attach_read(dir, &info) || !info.ifindex)
		return 0;
	if_indextoname(info.ifindex, name);
	prog_fd = obj_get(dir, "prog_guard");
	if (prog_fd < 0) {
		pr_error("cannot open %s/prog_guard to detach it from %s: %s", dir, name, strerror(-prog_fd));
		return prog_fd;
	}
	xp = xdp_program__from_fd(prog_fd);
	err = libxdp_get_error(xp);
	if (!err) {
		err = xdp_program__detach(xp, info.ifindex, info.mode, 0);
		xdp_program__close(xp);
	}
	close(prog_fd);
	if (err && err != -ENOENT) {
		pr_error("cannot detach the XDP guard from %s (ifindex %u): %s", name, info.ifindex, strerror(-err));
		return err;
	}
	printf("detached the XDP guard from %s (ifindex %u)%s\n", name, info.ifindex,
	       err ? ": it was no longer attached" : "");
	info.ifindex = 0;
	return attach_write(dir, &info);
}

static void detach_fanout(const char *dir)
{
	int prog_fd = obj_get(dir, "prog_fanout");
	int map_fd = obj_get(dir, "imgw_ctl");

	if (prog_fd >= 0 && map_fd >= 0 &&
	    !bpf_prog_detach2(prog_fd, map_fd, BPF_SK_MSG_VERDICT))
		printf("detached the fan-out program from imgw_ctl\n");
	if (prog_fd >= 0)
		close(prog_fd);
	if (map_fd >= 0)
		close(map_fd);
}

static int unpin(const char *dir, const char *name)
{
	char path[256];
	int err;

	path_of(path, sizeof(path), dir, name);
	if (unlink(path) == 0) {
		printf("unpinned %s\n", path);
		return 0;
	}
	err = -errno;
	if (err == -ENOENT)
		return 0;
	pr_error("cannot unpin %s: %s", path, strerror(-err));
	return err;
}

static int cmd_unload(const struct loader_opts *o)
{
	int err, ret = 0;
	size_t i;

	err = detach_guard(o->pin_dir);
	if (err)
		return err;
	detach_fanout(o->pin_dir);
	ret |= unpin(o->pin_dir, "prog_fanout");
	ret |= unpin(o->pin_dir, "prog_guard");
	for (i = 0; i < sizeof(fanout_maps) / sizeof(fanout_maps[0]); i++)
		ret |= unpin(o->pin_dir, fanout_maps[i]);
	for (i = 0; i < sizeof(guard_maps) / sizeof(guard_maps[0]); i++)
		ret |= unpin(o->pin_dir, guard_maps[i]);
	if (rmdir(o->pin_dir) == 0)
		printf("removed %s\n", o->pin_dir);
	else if (errno == ENOTEMPTY)
		printf("left %s: it holds pins imgw-loader did not create\n", o->pin_dir);
	return ret ? -EIO : 0;
}

static void status_obj(const char *dir, const char *name, int is_prog)
{
	struct bpf_prog_info pinfo = { 0 };
	struct bpf_map_info minfo = { 0 };
	__u32 len;
	int fd;

	fd = obj_get(dir, name);
	if (fd < 0) {
		printf("  %-16s not pinned\n", name);
		return;
	}
	if (is_prog) {
		len = sizeof(pinfo);
		bpf_obj_get_info_by_fd(fd, &pinfo, &len);
		printf("  %-16s prog id %u, %s\n", name, pinfo.id, pinfo.name);
	} else {
		len = sizeof(minfo);
		bpf_obj_get_info_by_fd(fd, &minfo, &len);
		printf("  %-16s map id %u, max_entries %u\n", name, minfo.id, minfo.max_entries);
	}
	close(fd);
}

static void status_xdp(const char *dir)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct imgw_attach_info info = { 0 };
	char name[IF_NAMESIZE] = "?";

	if (attach_read(dir, &info) || !info.ifindex) {
		printf("XDP guard: not attached\n");
		return;
	}
	if_indextoname(info.ifindex, name);
	if (bpf_xdp_query(info.ifindex, 0, &q)) {
		printf("XDP guard: recorded on %s, query failed: %s\n", name, strerror(errno));
		return;
	}
	printf("XDP guard: attached to %s (ifindex %u), %s mode, prog id on the interface %u\n",
	       name, info.ifindex, info.mode == XDP_MODE_NATIVE ? "native" : "generic",
	       q.prog_id);
}

static int cmd_status(const struct loader_opts *o)
{
	size_t i;

	printf("pin directory %s%s\n", o->pin_dir,
	       access(o->pin_dir, F_OK) ? " (absent)" : "");
	status_obj(o->pin_dir, "prog_fanout", 1);
	status_obj(o->pin_dir, "prog_guard", 1);
	for (i = 0; i < sizeof(fanout_maps) / sizeof(fanout_maps[0]); i++)
		status_obj(o->pin_dir, fanout_maps[i], 0);
	for (i = 0; i < sizeof(guard_maps) / sizeof(guard_maps[0]); i++)
		status_obj(o->pin_dir, guard_maps[i], 0);
	status_xdp(o->pin_dir);
	return 0;
}

/* Parses ADDR[/LEN] into an LPM key; returns 4 or 6, or -EINVAL. */
static int parse_prefix(const char *arg, struct imgw_lpm_v6 *key)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(arg, '/');
	int family = strchr(arg, ':') ? 6 : 4;
	int max = family == 6 ? 128 : 32;
	size_t n = slash ? (size_t)(slash - arg) : strlen(arg);
	char *end;
	long len = max;

	if (n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, arg, n);
	addr[n] = 0;
	if (inet_pton(family == 6 ? AF_INET6 : AF_INET, addr, key->addr) != 1)
		return -EINVAL;
	if (slash) {
		len = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || len < 0 || len > max)
			return -EINVAL;
	}
	key->prefixlen = len;
	return family;
}

static int cmd_block(const struct loader_opts *o, const char *prefix,
		     int remove)
{
	struct imgw_block val = { 0 };
	struct imgw_lpm_v6 key = { 0 };
	struct timespec now;
	int family, fd, err = 0;

	family = parse_prefix(prefix, &key);
	if (family < 0) {
		pr_error("invalid prefix '%s': expected ADDR or ADDR/LEN, IPv4 or IPv6", prefix);
		return -EINVAL;
	}
	fd = obj_get(o->pin_dir, family == 6 ? "imgw_block_v6" : "imgw_block_v4");
	if (fd < 0) {
		pr_error("cannot open the blocklist map in %s: %s (run imgw-loader load)", o->pin_dir, strerror(-fd));
		return fd;
	}
	if (o->ttl) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		val.expires_ns = (now.tv_sec + (__u64)o->ttl) * 1000000000ULL +
				 now.tv_nsec;
	}
	/* The IPv4 key is the same struct cut after the first four bytes. */
	if (remove ? bpf_map_delete_elem(fd, &key) :
		     bpf_map_update_elem(fd, &key, &val, BPF_ANY))
		err = -errno;
	close(fd);
	if (err) {
		pr_error("cannot %s %s: %s", remove ? "unblock" : "block", prefix, strerror(-err));
		return err;
	}
	if (remove)
		printf("unblocked %s\n", prefix);
	else
		printf("blocked %s%s\n", prefix, o->ttl ? " with an expiry" : "");
	return 0;
}

static void stats_print(const char *dir, const char *map,
			const char *const *names, __u32 count)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu > 0 ? ncpu : 1], sum;
	int fd, c;
	__u32 i;

	fd = obj_get(dir, map);
	if (fd < 0) {
		printf("%s: not pinned\n", map);
		return;
	}
	for (i = 0; i < count; i++) {
		sum = 0;
		if (!bpf_map_lookup_elem(fd, &i, vals))
			for (c = 0; c < ncpu; c++)
				sum += vals[c];
		printf("  %-24s %" PRIu64 "\n", names[i], (uint64_t)sum);
	}
	close(fd);
}

static int cmd_stats(const struct loader_opts *o)
{
	static const char *const xdp_names[IMGW_XC_MAX] = {
		"drop_blocked", "drop_syn_rate", "block_expired", "syn_passed",
	};
	static const char *const fo_names[IMGW_FC_MAX] = {
		"redirected", "no_socket", "not_member", "no_call", "past_end",
	};

	printf("XDP guard (imgw_xdp_stats):\n");
	stats_print(o->pin_dir, "imgw_xdp_stats", xdp_names, IMGW_XC_MAX);
	printf("fan-out (imgw_fo_stats):\n");
	stats_print(o->pin_dir, "imgw_fo_stats", fo_names, IMGW_FC_MAX);
	return 0;
}

static int parse_u32(const char *arg, const char *what, __u32 max, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || end == arg || v > max) {
		pr_error("invalid %s '%s': expected an integer from 0 to %u", what, arg, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct loader_opts *o)
{
	static const struct option lopts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "iface", required_argument, NULL, 'i' },
		{ "syn-rate", required_argument, NULL, 'r' },
		{ "syn-burst", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	__u32 port = 0;
	int c, err = 0;

	while (!err && (c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->pin_dir = optarg; break;
		case 'i': o->iface = optarg; break;
		case 'r': err = parse_u32(optarg, "--syn-rate", 1000000, &o->syn_rate); break;
		case 'b': err = parse_u32(optarg, "--syn-burst", 1000000, &o->syn_burst); break;
		case 'p': err = parse_u32(optarg, "--port", 65535, &port); break;
		case 't': err = parse_u32(optarg, "--ttl", 1u << 30, &o->ttl); break;
		case 'v': log_threshold = LOG_LEVEL_DEBUG; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	o->port = port;
	return err;
}

int main(int argc, char **argv)
{
	struct loader_opts o = { .pin_dir = DEFAULT_PIN_DIR, .syn_burst = 10 };
	const char *cmd, *arg = NULL;
	int err;

	log_init("imgw-loader", LOG_LEVEL_INFO);
	libbpf_set_print(libbpf_log);
	libxdp_set_print((libxdp_print_fn_t)libbpf_log);
	if (parse_opts(argc, argv, &o) || optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (optind + 1 < argc)
		arg = argv[optind + 1];
	if (geteuid() != 0) {
		pr_error("imgw-loader needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN); run it with sudo");
		return 1;
	}

	if (!strcmp(cmd, "load"))
		err = cmd_load(&o);
	else if (!strcmp(cmd, "unload"))
		err = cmd_unload(&o);
	else if (!strcmp(cmd, "status"))
		err = cmd_status(&o);
	else if (!strcmp(cmd, "stats"))
		err = cmd_stats(&o);
	else if ((!strcmp(cmd, "block") || !strcmp(cmd, "unblock")) && arg)
		err = cmd_block(&o, arg, cmd[0] == 'u');
	else {
		usage(stderr);
		return 2;
	}
	return err ? 1 : 0;
}
