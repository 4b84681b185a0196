/* firstfetch: the fetch of an autopull first run, alone: opens (creates) the bare mirror at
 * DIR and fetches BRANCH from URL with ap_repo_fetch, the code `autopull apply` runs, without
 * the plan, the installs and the manager. A helper of bench/first-sweep.sh, which times it
 * with aptime next to `git fetch` into an empty bare mirror.
 *
 *   firstfetch URL DIR [BRANCH]      (BRANCH default main)
 *
 * Prints the fetched tip; exit 0 on success, 1 otherwise (the error is logged by repo). */
#include <stdio.h>

#include "log.h"
#include "model.h"
#include "repo.h"

int main(int argc, char **argv)
{
	struct ap_repo *repo = NULL;
	char tip[AP_OID_HEXSZ + 1];
	int r;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: firstfetch URL DIR [BRANCH]\n");
		return 2;
	}
	ap_log_init();
	struct ap_remote_opts o = {
		.url = argv[1],
		.branch = argc == 4 ? argv[3] : "main",
		.trust_owner = true,
	};
	r = ap_repo_open(argv[2], &repo);
	if (r < 0)
		return 1;
	r = ap_repo_fetch(repo, &o, tip);
	ap_repo_free(repo);
	if (r < 0)
		return 1;
	printf("%s\n", tip);
	return 0;
}
