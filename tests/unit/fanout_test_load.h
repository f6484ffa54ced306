/* SPDX-License-Identifier: MIT */
/*
 * Loads the sk_msg fan-out program with its maps pinned under TEST_PIN_DIR
 * (see kpath_test_env.h) and attaches it to the control sockmap, as
 * imgw-loader does for a gateway.
 */
#ifndef IMGW_FANOUT_TEST_LOAD_H
#define IMGW_FANOUT_TEST_LOAD_H

#include <errno.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "imgw_fanout.skel.h"
#include "kpath_test_env.h"

/* Returns 0 and the loaded skeleton in *out, or a negative errno. */
static inline int fanout_load(struct imgw_fanout **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = TEST_PIN_DIR);
	struct imgw_fanout *skel;
	int err;

	skel = imgw_fanout__open_opts(&opts);
	if (!skel)
		return -errno;
	err = imgw_fanout__load(skel);
	if (!err)
		err = bpf_prog_attach(bpf_program__fd(skel->progs.imgw_fanout),
				      bpf_map__fd(skel->maps.imgw_ctl),
				      BPF_SK_MSG_VERDICT, 0);
	if (err) {
		imgw_fanout__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

#endif
