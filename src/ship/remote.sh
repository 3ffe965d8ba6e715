# assemble ship, the server's side: run by `sh -c` over ssh with the store path ($1, empty for
# the default) and the load mode ($2). It needs a POSIX shell, tar and sha256sum, nothing else.
#
# 1. It makes sure the store is an OCI image layout, then tells what it has: `store PATH`,
#    `arch MACHINE`, `engine NAME` (when one is usable), `index BYTES` followed by index.json,
#    `have HEX` per blob, and `ready`.
# 2. It answers `cat HEX` with `blob SIZE` and the blob's bytes (or `none`), for a rollback to
#    read manifests and configs, until it reads `go SHA256-OF-THAT-INDEX gzip|plain prune|keep`;
#    then a tar stream (gzipped when it said `gzip`): `blobs/HEX` files, the new `index.json`,
#    `keep` (every blob the image needs, which a prune never removes), `load/plan`, and
#    `end`. Every blob is checked against its name before any is moved into
#    place, so a broken stream leaves nothing under a final name.
# 3. Holding the store's lock (a directory, `.lock`, with the holder's pid), it moves the blobs
#    in, replaces index.json only if it is still the one it described, and with `prune` removes
#    every blob that nothing index.json lists refers to (following the digests each JSON
#    document names): `stored`, `pruned COUNT BYTES`. Then it loads the image into the engine
#    from the store, and says `loaded` (or `present`, when the engine has that image already),
#    `done`.
set -u
umask 077
say() { printf '%s\n' "$*"; }
fail() {
    printf 'assemble-ship: %s\n' "$*" >&2
    exit 3
}
store=${1:-}
load=${2:-auto}
# No --store: the server's own ASSEMBLE_STORE (set in its environment, or sent by the
# client's ssh config with SetEnv where sshd accepts it), else the user's data directory.
if [ -z "$store" ]; then
    store=${ASSEMBLE_STORE:-}
fi
if [ -z "$store" ]; then
    [ -n "${HOME:-}" ] || fail "HOME is not set on the server; give --store PATH"
    store="$HOME/.local/share/assemble/store"
fi
for tool in tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail "the server has no \`$tool\` on its PATH ($PATH); ship needs a POSIX shell, tar and sha256sum there"
done
if [ -e "$store" ] && [ ! -d "$store" ]; then
    fail "the store \`$store\` exists and is not a directory"
fi
if [ -d "$store" ] && [ ! -f "$store/oci-layout" ] && [ -n "$(ls -A "$store" 2>/dev/null)" ]; then
    fail "\`$store\` is not empty and is not an OCI image layout (it has no oci-layout file); give --store an empty or new directory, or an existing store"
fi
mkdir -p "$store/blobs/sha256" 2>/dev/null || fail "cannot create the store \`$store\`"
[ -w "$store" ] && [ -w "$store/blobs/sha256" ] || fail "the store \`$store\` is not writable by $(id -un 2>/dev/null)"
store=$(cd "$store" && pwd -P) || fail "cannot enter the store \`$store\`"
[ -f "$store/oci-layout" ] || printf '{"imageLayoutVersion":"1.0.0"}' >"$store/oci-layout"
[ -f "$store/index.json" ] ||
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' >"$store/index.json"
# What an earlier ship that was killed outright left behind.
for d in "$store"/.incoming.*; do
    [ -d "$d" ] || continue
    kill -0 "${d##*.}" 2>/dev/null || rm -rf "$d"
done

usable() {
    case $1 in
    podman) command -v podman >/dev/null 2>&1 ;;
    docker) command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ;;
    containerd) command -v ctr >/dev/null 2>&1 && ctr version >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}
say "store $store"
say "arch $(uname -m)"
command -v gzip >/dev/null 2>&1 && say "gzip"
case $load in
none) ;;
auto)
    for e in podman docker containerd; do
        if usable "$e"; then
            say "engine $e"
            break
        fi
    done
    ;;
*)
    usable "$load" || fail "--load $load: \`$load\` is not installed or not running on the server"
    say "engine $load"
    ;;
esac
say "index $(wc -c <"$store/index.json" | tr -d ' ')"
cat "$store/index.json"
say ""
for f in "$store"/blobs/sha256/*; do
    [ -f "$f" ] && say "have ${f##*/}"
done
say ready

while :; do
    IFS=' ' read -r verb oldsum gz prune || exit 0
    case $verb in
    cat)
        f="$store/blobs/sha256/$oldsum"
        case $oldsum in
        *[!0-9a-f]* | '') say none ;;
        *) if [ ${#oldsum} -eq 64 ] && [ -f "$f" ]; then
            say "blob $(wc -c <"$f" | tr -d ' ')"
            cat "$f"
        else
            say none
        fi ;;
        esac
        ;;
    go) break ;;
    *) fail "unexpected request \`$verb\` from assemble" ;;
    esac
done
tmp="$store/.incoming.$$"
lock="$store/.lock"
locked=''
trap 'rm -rf "$tmp"; [ -z "$locked" ] || rm -rf "$lock"' EXIT
trap 'exit 4' HUP INT TERM PIPE
mkdir "$tmp" || fail "cannot create \`$tmp\`"
broke="the stream from assemble broke off; nothing was moved into the store"
if [ "$gz" = gzip ]; then
    gzip -dc | tar -xf - -C "$tmp" || fail "$broke"
else
    tar -xf - -C "$tmp" || fail "$broke"
fi
[ -f "$tmp/end" ] || fail "$broke"
for f in "$tmp"/blobs/*; do
    [ -f "$f" ] || continue
    sum=$(sha256sum <"$f") || fail "sha256sum failed on \`$f\`"
    sum=${sum%% *}
    [ "$sum" = "${f##*/}" ] ||
        fail "blob sha256:${f##*/} arrived with sha256 $sum; nothing was moved into the store"
done
# One ship at a time changes the store (a prune must not remove what another is adding).
tries=0
until mkdir "$lock" 2>/dev/null; do
    holder=$(cat "$lock/pid" 2>/dev/null || true)
    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
        # A dead holder's lock is moved aside first: of two waiters that saw it, one wins.
        mv "$lock" "$lock.stale.$$" 2>/dev/null && rm -rf "$lock.stale.$$"
        continue
    fi
    tries=$((tries + 1))
    [ "$tries" -le 120 ] ||
        fail "the store \`$store\` has been locked by another ship (process ${holder:-unknown}) for two minutes; if none runs, remove \`$lock\`"
    sleep 1
done
locked=yes
echo $$ >"$lock/pid"
for f in "$tmp"/blobs/*; do
    [ -f "$f" ] || continue
    mv -f "$f" "$store/blobs/sha256/${f##*/}" || fail "cannot move a blob into \`$store/blobs/sha256\`"
done
cur=$(sha256sum <"$store/index.json")
[ "${cur%% *}" = "$oldsum" ] ||
    fail "\`$store/index.json\` changed while this ship ran (another ship at once?); the blobs are in place, run ship again"
mv -f "$tmp/index.json" "$store/index.json" || fail "cannot replace \`$store/index.json\`"
say stored
if [ "$prune" = prune ]; then
    # Mark: every digest index.json names, then every digest each marked document of up to
    # 4 MiB names (an index its manifests, a manifest its config and layers); more is kept,
    # never less. Any step that fails, or tools that do not behave, stop the prune before
    # anything is removed.
    nope="prune needs grep -a -o, sed, sort, comm and wc on the server; nothing was removed"
    digests() {
        { grep -a -o 'sha256:[0-9a-f]\{64\}' "$@" || [ $? -eq 1 ]; } | sed 's/.*sha256://' | sort -u
    }
    probe=$(printf 'x"sha256:%s"y\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef | digests) ||
        fail "$nope"
    [ "$probe" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ] || fail "$nope"
    digests "$store/index.json" >"$tmp/todo" || fail "$nope"
    : >"$tmp/marked"
    while [ -s "$tmp/todo" ]; do
        comm -23 "$tmp/todo" "$tmp/marked" >"$tmp/new" || fail "$nope"
        [ -s "$tmp/new" ] || break
        sort -u "$tmp/marked" "$tmp/new" -o "$tmp/marked" || fail "$nope"
        : >"$tmp/next"
        while read -r hex; do
            f="$store/blobs/sha256/$hex"
            [ -f "$f" ] || continue
            size=$(wc -c <"$f" | tr -d ' ') || fail "$nope"
            [ "$size" -le 4194304 ] || continue
            digests "$f" >>"$tmp/next" || fail "$nope"
        done <"$tmp/new"
        sort -u "$tmp/next" -o "$tmp/todo" || fail "$nope"
    done
    # What the image just shipped needs is kept whatever the marking found.
    if [ -f "$tmp/keep" ]; then
        sort -u "$tmp/marked" "$tmp/keep" -o "$tmp/marked" || fail "$nope"
    fi
    grep -q . "$tmp/marked" || fail "$nope"
    ls "$store/blobs/sha256" | sort >"$tmp/all" || fail "$nope"
    count=0 bytes=0
    for hex in $(comm -23 "$tmp/all" "$tmp/marked"); do
        size=$(wc -c <"$store/blobs/sha256/$hex" | tr -d ' ')
        rm -f "$store/blobs/sha256/$hex" || fail "cannot remove blob $hex from the store"
        count=$((count + 1))
        bytes=$((bytes + size))
    done
    say "pruned $count $bytes"
fi
rm -rf "$lock"
locked=''

[ -f "$tmp/load/plan" ] || {
    say done
    exit 0
}
engine='' digest='' first='' names='' format=oci config=''
mkdir -p "$tmp/load/blobs/sha256"
: >"$tmp/load/layers.list"
while IFS=' ' read -r key value; do
    case $key in
    engine) engine=$value ;;
    digest) digest=$value ;;
    format) format=$value ;;
    config) config=$value ;;
    layer) printf '%s\n' "$value" >>"$tmp/load/layers.list" ;;
    name) if [ -z "$first" ]; then first=$value; else names="$names $value"; fi ;;
    blob)
        ln "$store/blobs/sha256/$value" "$tmp/load/blobs/sha256/$value" 2>/dev/null ||
            cp "$store/blobs/sha256/$value" "$tmp/load/blobs/sha256/$value" ||
            fail "cannot stage blob $value for loading"
        ;;
    esac
done <"$tmp/load/plan"
printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/load/oci-layout"
pack() { (cd "$tmp/load" && tar -cf - oci-layout index.json blobs); }
verb=loaded
case $engine in
podman)
    if [ "$format" = docker ]; then
        # podman keeps a health check only from a Docker-format image: the platform goes in as
        # a `docker save` archive (manifest.json, the config, uncompressed layers), and is
        # known by its config digest, its image ID.
        if [ "$(podman image inspect --format '{{.Id}}' "$first" 2>/dev/null)" != "$config" ]; then
            mkdir -p "$tmp/load/layers"
            while IFS=' ' read -r hex how diffid; do
                case $how in
                gzip) gzip -dc ;;
                zstd) zstd -dcq ;;
                *) cat ;;
                esac <"$store/blobs/sha256/$hex" >"$tmp/load/layers/$diffid.tar" ||
                    fail "cannot decompress layer $hex for loading"
            done <"$tmp/load/layers.list"
            (cd "$tmp/load" && tar -cf - manifest.json "blobs/sha256/$config" layers) | podman load -q >/dev/null ||
                fail "podman load failed"
        else
            verb=present
        fi
    elif [ "$(podman image inspect --format '{{.Digest}}' "$first" 2>/dev/null)" != "$digest" ]; then
        pack | podman load -q >/dev/null || fail "podman load failed"
    else
        verb=present
    fi
    for n in $names; do podman tag "$first" "$n" || fail "podman tag $first $n failed"; done
    ;;
docker)
    pack | docker load -q >/dev/null || fail "docker load failed"
    for n in $names; do docker tag "$first" "$n" || fail "docker tag $first $n failed"; done
    ;;
containerd)
    ns=${CONTAINERD_NAMESPACE:-default}
    pack | ctr -n "$ns" images import - >/dev/null || fail "ctr images import failed"
    for n in $names; do ctr -n "$ns" images tag --force "$first" "$n" >/dev/null || fail "ctr images tag failed"; done
    ;;
*) fail "unknown engine \`$engine\`" ;;
esac
say "$verb $engine"
say done
