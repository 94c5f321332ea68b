#!/usr/bin/env bash
# Build (or reuse) the binaries of the local test sandbox, outside the repository.
#
#   bash scripts/build-components.sh [k8s] [etcd] [kwok] [metrics-server] [helm] [kube-state-metrics] [prometheus]
#                                    [prometheus3] [victoriametrics]
#
# Without arguments every component is built or reused. Everything goes to a
# version-keyed cache (default ~/.cache/rightsizer):
#
#   $RIGHTSIZER_CACHE/k8s-v1.36.3/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $RIGHTSIZER_CACHE/etcd-v3.6.16/bin/etcd
#   $RIGHTSIZER_CACHE/kwok-v0.8.0/bin/kwok  (+ share/*.yaml: stages, metrics, usage)
#   $RIGHTSIZER_CACHE/metrics-server-v0.9.0/bin/metrics-server
#   $RIGHTSIZER_CACHE/helm-v3.22.0/bin/helm   (the chart tests; not started by the sandbox)
#   $RIGHTSIZER_CACHE/kube-state-metrics-v2.18.0/bin/kube-state-metrics  (the live scrape test)
#   $RIGHTSIZER_CACHE/prometheus-v3.16.0/bin/{prometheus,promtool}  (history tests on Prometheus 3)
#   $RIGHTSIZER_CACHE/victoriametrics-v1.151.0/bin/victoria-metrics  (history tests on VictoriaMetrics)
#   $RIGHTSIZER_CACHE/go/{mod,build}          Go module and build caches
#   $RIGHTSIZER_CACHE/modules/<name>/go.mod   generated wrapper modules
#
# A binary that exists and reports the expected version is reused (a warm run
# takes a second). Cold, on 2 cores: about 10-13 minutes, plus about 4 for helm and 5-12
# for kube-state-metrics (docs/sandbox.md). Prometheus/promtool come from Debian (apt-get) when missing.
# Everything is built from Go modules fetched through the Go module proxy with
# the ordinary `go` client; nothing is downloaded as a prebuilt binary.
set -euo pipefail

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod -buildvcs=false"

CACHE="${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}"
K8S_VERSION="${RIGHTSIZER_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${RIGHTSIZER_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${RIGHTSIZER_KWOK_VERSION:-v0.8.0}"
METRICS_SERVER_VERSION="${RIGHTSIZER_METRICS_SERVER_VERSION:-v0.9.0}"
HELM_VERSION="${RIGHTSIZER_HELM_VERSION:-v3.22.0}"
KSM_VERSION="${RIGHTSIZER_KSM_VERSION:-v2.18.0}"
# Parallel compile jobs; the CI machine has 2 cores.
GO_BUILD_P="${RIGHTSIZER_GO_BUILD_P:-$(nproc 2>/dev/null || echo 2)}"

export GOMODCACHE="${RIGHTSIZER_GOMODCACHE:-$CACHE/go/mod}"
export GOCACHE="${RIGHTSIZER_GOCACHE:-$CACHE/go/build}"

GO="${RIGHTSIZER_GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
    else echo "build-components: no Go toolchain found (need go >= 1.26)" >&2; exit 1
    fi
fi

log() { printf '[build-components %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

declare -a TIMINGS=()
# step NAME CMD...: run CMD, print and record how long it took.
step() {
    local name="$1"; shift
    local start=$SECONDS rc=0
    log "start: $name"
    "$@" || rc=$?
    local took=$((SECONDS - start))
    TIMINGS+=("$(printf '%-40s %5ds%s' "$name" "$took" "$([[ $rc -ne 0 ]] && echo '  FAILED')")")
    log "done:  $name (${took}s, rc=$rc)"
    return "$rc"
}

# version_ok BINARY EXPECTED ARGS...: the binary exists and its version output contains EXPECTED.
version_ok() {
    local bin="$1" expected="$2"; shift 2
    [[ -x "$bin" ]] || return 1
    local out
    out="$("$bin" "$@" 2>&1)" || return 1
    [[ "$out" == *"$expected"* ]]
}

# write_module DIR MODULE_NAME: start a wrapper module in DIR (go.mod body read from stdin).
write_module() {
    local dir="$1"
    mkdir -p "$dir"
    cat >"$dir/go.mod.new"
    if ! cmp -s "$dir/go.mod.new" "$dir/go.mod.src" 2>/dev/null; then
        # Inputs changed (or first run): start from a clean go.mod/go.sum.
        cp "$dir/go.mod.new" "$dir/go.mod.src"
        cp "$dir/go.mod.new" "$dir/go.mod"
        rm -f "$dir/go.sum"
    fi
    rm -f "$dir/go.mod.new"
    # An empty package so that the directory is a buildable module root.
    printf 'package wrapper\n' >"$dir/wrapper.go"
}

# mod_file MODULE@VERSION: print the path of that module's go.mod in the module cache.
mod_file() {
    (cd "$CACHE/modules" && "$GO" mod download -json "$1") \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | head -n1
}

# ---------------------------------------------------------------- Kubernetes
build_k8s() {
    local dir="$CACHE/modules/k8s-$K8S_VERSION" out="$CACHE/k8s-$K8S_VERSION/bin"
    local staging_version="v0${K8S_VERSION#v1}"   # v1.36.3 -> v0.36.3
    local gomod
    gomod="$(mod_file "k8s.io/kubernetes@$K8S_VERSION")"
    [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    # Every staging module that k8s.io/kubernetes replaces with ./staging/... is
    # pinned to the matching published v0.x.y version.
    local -a staging
    mapfile -t staging < <(sed -n 's#^[[:space:]]*\([^[:space:]]*\) => \./staging/.*#\1#p' "$gomod" | sort -u)
    [[ ${#staging[@]} -gt 10 ]] || die "found only ${#staging[@]} staging modules in $gomod"
    log "k8s: pinning ${#staging[@]} staging modules to $staging_version"
    # A few staging modules are not published for every release (e.g.
    # k8s.io/sample-cli-plugin); nothing we build imports them, so they are
    # replaced by empty local stub modules.
    local -a stubs=()
    local m
    for m in "${staging[@]}"; do
        if ! (cd "$CACHE/modules" && "$GO" mod download "$m@$staging_version") >/dev/null 2>&1; then
            stubs+=("$m")
            mkdir -p "$dir/stub/$m"
            printf 'module %s\n\ngo 1.26.0\n' "$m" >"$dir/stub/$m/go.mod"
        fi
    done
    [[ ${#stubs[@]} -eq 0 ]] || log "k8s: not published at $staging_version, stubbed: ${stubs[*]}"
    {
        echo "module rightsizer.local/components/k8s"
        echo
        echo "go 1.26.0"
        echo
        echo "require ("
        echo "	k8s.io/kubernetes $K8S_VERSION"
        for m in "${staging[@]}"; do echo "	$m $staging_version"; done
        echo ")"
        echo
        echo "replace ("
        for m in "${staging[@]}"; do
            if [[ " ${stubs[*]} " == *" $m "* ]]; then echo "	$m => ./stub/$m"
            else echo "	$m => $m $staging_version"
            fi
        done
        echo ")"
    } | write_module "$dir"

    local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    local vpkg=k8s.io/component-base/version
    local ldflags="-s -w \
        -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor \
        -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$date \
        -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
        -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor \
        -X k8s.io/client-go/pkg/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.buildDate=$date"
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath -ldflags "$ldflags" -o "$out/" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl)
}

k8s_ok() {
    local out="$CACHE/k8s-$K8S_VERSION/bin"
    version_ok "$out/kube-apiserver" "Kubernetes $K8S_VERSION" --version &&
    version_ok "$out/kube-controller-manager" "Kubernetes $K8S_VERSION" --version &&
    version_ok "$out/kube-scheduler" "Kubernetes $K8S_VERSION" --version &&
    version_ok "$out/kubectl" "Client Version: $K8S_VERSION" version --client
}

# ---------------------------------------------------------------- etcd
build_etcd() {
    local dir="$CACHE/modules/etcd-$ETCD_VERSION" out="$CACHE/etcd-$ETCD_VERSION/bin"
    # go.etcd.io/etcd/server/v3 replaces its sibling modules with ../api etc.;
    # pin them all to the same release. Its root package is the etcd main.
    write_module "$dir" <<EOF
module rightsizer.local/components/etcd

go 1.26.0

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
EOF
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath \
        -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
        -o "$out/etcd" go.etcd.io/etcd/server/v3)
}
etcd_ok() { version_ok "$CACHE/etcd-$ETCD_VERSION/bin/etcd" "etcd Version: ${ETCD_VERSION#v}" --version; }

# ---------------------------------------------------------------- kwok
build_kwok() {
    local dir="$CACHE/modules/kwok-$KWOK_VERSION" out="$CACHE/kwok-$KWOK_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/kwok

go 1.26.0

require sigs.k8s.io/kwok $KWOK_VERSION
EOF
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
        -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok) || return 1
    # The sandbox runs kwok with the same stages, kubelet /metrics/resource
    # emulation and annotation-driven resource usage that kwokctl uses; copy
    # those YAML files from the very module version that was built.
    local src share="$CACHE/kwok-$KWOK_VERSION/share"
    src="$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
    mkdir -p "$share"
    cp -f "$src/kustomize/stage/node/fast/node-initialize.yaml" \
        "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
        "$src/kustomize/stage/pod/fast/pod-ready.yaml" \
        "$src/kustomize/stage/pod/fast/pod-complete.yaml" \
        "$src/kustomize/stage/pod/fast/pod-delete.yaml" \
        "$src/kustomize/metrics/resource/metrics-resource.yaml" \
        "$src/kustomize/metrics/usage/usage-from-annotation.yaml" \
        "$share/"
    chmod u+w "$share"/*.yaml
}
KWOK_SHARE_FILES=(node-initialize.yaml node-heartbeat-with-lease.yaml pod-ready.yaml pod-complete.yaml
                  pod-delete.yaml metrics-resource.yaml usage-from-annotation.yaml)
kwok_ok() {
    local f
    for f in "${KWOK_SHARE_FILES[@]}"; do [[ -f "$CACHE/kwok-$KWOK_VERSION/share/$f" ]] || return 1; done
    version_ok "$CACHE/kwok-$KWOK_VERSION/bin/kwok" "$KWOK_VERSION" --version
}

# ---------------------------------------------------------------- metrics-server
build_metrics_server() {
    local dir="$CACHE/modules/metrics-server-$METRICS_SERVER_VERSION"
    local out="$CACHE/metrics-server-$METRICS_SERVER_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/metrics-server

go 1.26.4

require sigs.k8s.io/metrics-server $METRICS_SERVER_VERSION
EOF
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath \
        -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION -X k8s.io/client-go/pkg/version.gitTreeState=clean" \
        -o "$out/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server)
}
metrics_server_ok() {
    version_ok "$CACHE/metrics-server-$METRICS_SERVER_VERSION/bin/metrics-server" "$METRICS_SERVER_VERSION" --version
}

# ---------------------------------------------------------------- helm
build_helm() {
    local dir="$CACHE/modules/helm-$HELM_VERSION" out="$CACHE/helm-$HELM_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/helm

go 1.26.0

require helm.sh/helm/v3 $HELM_VERSION
EOF
    # As helm's Makefile: the Kubernetes version that `helm template` and `helm lint`
    # assume is the one of the client-go it was built with (v0.37.x -> 1.37).
    local client_go major minor ldflags
    client_go="$(cd "$dir" && "$GO" list -m -f '{{.Version}}' k8s.io/client-go)" || return 1
    client_go="${client_go#v}"
    major=$(( ${client_go%%.*} + 1 )); minor="${client_go#*.}"; minor="${minor%%.*}"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
        -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath -ldflags "$ldflags" \
        -o "$out/helm" helm.sh/helm/v3/cmd/helm)
}
helm_ok() { version_ok "$CACHE/helm-$HELM_VERSION/bin/helm" "Version:\"$HELM_VERSION\"" version; }

# ---------------------------------------------------------------- kube-state-metrics
# The real exporter that the live scrape test (tests/integration/test_live_scrape.py)
# has Prometheus scrape; its root package is the kube-state-metrics main.
build_ksm() {
    local dir="$CACHE/modules/kube-state-metrics-$KSM_VERSION"
    local out="$CACHE/kube-state-metrics-$KSM_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/kube-state-metrics

go 1.26.0

require k8s.io/kube-state-metrics/v2 $KSM_VERSION
EOF
    local vpkg=github.com/prometheus/common/version
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath \
        -ldflags "-s -w -X $vpkg.Version=${KSM_VERSION#v} -X $vpkg.Revision=$KSM_VERSION -X $vpkg.Branch=release" \
        -o "$out/kube-state-metrics" k8s.io/kube-state-metrics/v2)
}
ksm_ok() {
    version_ok "$CACHE/kube-state-metrics-$KSM_VERSION/bin/kube-state-metrics" "version ${KSM_VERSION#v}" version
}

# ---------------------------------------------------------------- Prometheus (Debian)
prometheus_ok() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
install_prometheus() {
    command -v apt-get >/dev/null 2>&1 || die "prometheus/promtool missing and apt-get is not available"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    # Never let the package start its own service (policy-rc.d is honoured by
    # invoke-rc.d; there is no systemd here anyway).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"; created_policy=1
    fi
    local rc=0
    { $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus; } || rc=$?
    [[ $created_policy -eq 1 ]] && $sudo rm -f "$policy"
    # Keep the packaged service from starting at boot on machines with systemd.
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        $sudo deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
    fi
    return "$rc"
}
# Stop a Debian prometheus service that may have been started (it listens on
# :9090 on all interfaces and would scrape things); the sandbox runs its own.
stop_debian_prometheus() {
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
    fi
    local pid
    for pid in $(pgrep -x prometheus 2>/dev/null || true); do
        # Only the packaged service (it runs as user "prometheus"), never ours.
        [[ "$(ps -o user= -p "$pid" 2>/dev/null | tr -d ' ')" == prometheus ]] || continue
        log "stopping the Debian prometheus service (pid $pid)"
        kill "$pid" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------- Prometheus 3 (Go modules)
# Prometheus 3.x is published as the Go module github.com/prometheus/prometheus
# v0.3MM.P for release 3.MM.P. Built without the embedded web UI (the React
# assets are not in the module; the `builtinassets` tag is off, the API works)
# and with `remove_all_sd` (only file and HTTP service discovery: the sandbox
# scrapes static targets), which leaves out the cloud SDKs.
PROMETHEUS3_VERSION="${RIGHTSIZER_PROMETHEUS3_VERSION:-v3.16.0}"
prometheus3_module_version() {
    local v="${PROMETHEUS3_VERSION#v3.}" minor patch
    minor="${v%%.*}"; patch="${v#*.}"
    printf 'v0.3%02d.%s' "$minor" "$patch"
}
build_prometheus3() {
    local dir="$CACHE/modules/prometheus-$PROMETHEUS3_VERSION" out="$CACHE/prometheus-$PROMETHEUS3_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/prometheus3

go 1.26.7

require github.com/prometheus/prometheus $(prometheus3_module_version)
EOF
    local vpkg=github.com/prometheus/common/version
    local ldflags="-s -w -X $vpkg.Version=${PROMETHEUS3_VERSION#v} -X $vpkg.Revision=$(prometheus3_module_version) \
        -X $vpkg.Branch=module -X $vpkg.BuildUser=rightsizer -X $vpkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath -tags "netgo,remove_all_sd" -ldflags "$ldflags" \
        -o "$out/" github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
}
prometheus3_ok() {
    local out="$CACHE/prometheus-$PROMETHEUS3_VERSION/bin"
    version_ok "$out/prometheus" "version ${PROMETHEUS3_VERSION#v}" --version &&
    version_ok "$out/promtool" "version ${PROMETHEUS3_VERSION#v}" --version
}

# ---------------------------------------------------------------- VictoriaMetrics single-node (Go modules)
# The single-node binary (app/victoria-metrics), pure Go. Releases newer than
# v1.151.0 need a newer Go than 1.26.
VICTORIAMETRICS_VERSION="${RIGHTSIZER_VICTORIAMETRICS_VERSION:-v1.151.0}"
build_victoriametrics() {
    local dir="$CACHE/modules/victoriametrics-$VICTORIAMETRICS_VERSION"
    local out="$CACHE/victoriametrics-$VICTORIAMETRICS_VERSION/bin"
    write_module "$dir" <<EOF
module rightsizer.local/components/victoriametrics

go 1.26.6

require github.com/VictoriaMetrics/VictoriaMetrics $VICTORIAMETRICS_VERSION
EOF
    mkdir -p "$out"
    (cd "$dir" && "$GO" build -p "$GO_BUILD_P" -trimpath \
        -ldflags "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-$VICTORIAMETRICS_VERSION" \
        -o "$out/victoria-metrics" github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics)
}
victoriametrics_ok() {
    version_ok "$CACHE/victoriametrics-$VICTORIAMETRICS_VERSION/bin/victoria-metrics" "$VICTORIAMETRICS_VERSION" -version
}

# ---------------------------------------------------------------- main
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(prometheus etcd k8s kwok metrics-server helm kube-state-metrics prometheus3 victoriametrics)

mkdir -p "$CACHE/modules"
log "cache: $CACHE  go: $("$GO" version)  jobs: $GO_BUILD_P"
total_start=$SECONDS
# ensure LABEL CHECK BUILD: reuse when CHECK passes, else BUILD (timed) and CHECK again.
ensure() {
    local label="$1" check="$2" build="$3"
    if "$check"; then log "$label: reusing"; return 0; fi
    step "$label" "$build" || die "$label failed (see above)"
    "$check" || die "$label: the result does not report the expected version"
}

for c in "${want[@]}"; do
    case "$c" in
        k8s|kubernetes) ensure "k8s $K8S_VERSION (4 binaries)" k8s_ok build_k8s ;;
        etcd)           ensure "etcd $ETCD_VERSION" etcd_ok build_etcd ;;
        kwok)           ensure "kwok $KWOK_VERSION" kwok_ok build_kwok ;;
        metrics-server) ensure "metrics-server $METRICS_SERVER_VERSION" metrics_server_ok build_metrics_server ;;
        helm)           ensure "helm $HELM_VERSION" helm_ok build_helm ;;
        kube-state-metrics|ksm)
                        ensure "kube-state-metrics $KSM_VERSION" ksm_ok build_ksm ;;
        prometheus3)    ensure "prometheus $PROMETHEUS3_VERSION (Go modules)" prometheus3_ok build_prometheus3 ;;
        victoriametrics) ensure "victoriametrics $VICTORIAMETRICS_VERSION" victoriametrics_ok build_victoriametrics ;;
        prometheus)
            ensure "prometheus (apt-get)" prometheus_ok install_prometheus
            log "prometheus: $(prometheus --version 2>&1 | head -n1)"
            stop_debian_prometheus ;;
        *) die "unknown component '$c' (k8s, etcd, kwok, metrics-server, helm, kube-state-metrics, prometheus, prometheus3, victoriametrics)" ;;
    esac
done

log "timings:"
for t in "${TIMINGS[@]}"; do printf '  %s\n' "$t" >&2; done
printf '  %-40s %5ds\n' "total" "$((SECONDS - total_start))" >&2
