# Enforces the layer table of doc/ARCHITECTURE.md (see there) on the files given as arguments
# (every file of src/ and include/): awk -v table=doc/ARCHITECTURE.md -f scripts/layers.awk FILES.
# Prints one line per violation and exits 1 if there was any.

function trim(s) { gsub(/^[ \t`]+|[ \t`]+$/, "", s); return s }
# The module a file or header belongs to: its name up to the first '-' (repo-fetch.c, repo.h
# and repo-private.h are the repo module; cmd-apply.c and cmd.h the verbs).
function module(name)
{
	sub(/^.*\//, "", name); sub(/\.[ch]$/, "", name); sub(/-.*/, "", name)
	return name
}
function header(path) { sub(/^.*\//, "", path); sub(/\.h$/, "", path); return path }
function bad(msg) { print "lint: " msg; nbad++ }

BEGIN {
	while ((r = (getline line < table)) > 0) {
		if (line !~ /^\|[ \t]*`?(src|include)\//) continue
		n = split(line, col, "|")
		f = trim(col[2]); l = trim(col[3])
		if (l !~ /^[0-3]$/) { bad(table ": " f ": layer '" l "' is not 0-3"); continue }
		if (f in layer) bad(table ": " f " has two rows")
		layer[f] = l; why[f] = trim(col[5]); nuses[f] = split(trim(col[4]), u, /[ \t]+/)
		for (i = 1; i <= nuses[f]; i++) { may[f, u[i]] = 1; use[f, i] = u[i] }
		if (f ~ /\.h$/) hlayer[header(f)] = l
	}
	if (r < 0) { bad("cannot read " table); broken = 1; exit 1 }
}

FNR == 1 {
	seen[FILENAME] = 1
	if (!(FILENAME in layer)) bad(FILENAME " has no row in " table " (place it in a layer)")
}

/^#include "/ && FILENAME in layer {
	h = $2; gsub(/"/, "", h); h = header(h)
	if (!may[FILENAME, h]) {
		w = why[FILENAME] == "" ? "" : " (" why[FILENAME] ")"
		bad(FILENAME ":" FNR ": includes " h ".h, which its row in " table " does not allow" w)
	}
}

END {
	if (broken) exit 1
	for (f in layer) {
		if (!(f in seen)) bad(table ": " f " has a row but no longer exists")
		for (i = 1; i <= nuses[f]; i++) {
			h = use[f, i]
			if (!(h in hlayer)) { bad(table ": " f " may use " h ".h, which has no row"); continue }
			if (hlayer[h] > layer[f])
				bad(table ": " f " (layer " layer[f] ") may use " h ".h (layer " hlayer[h] \
				    "): arrows point down only")
			else if (layer[f] == 1 && hlayer[h] == 1 && module(h) != module(f) && h != "config")
				bad(table ": " f " may use " h ".h: layer-1 modules talk through the " \
				    "engine, never to each other")
		}
	}
	exit (nbad > 0)
}
