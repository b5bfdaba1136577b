#!/usr/bin/env bash
# Records, then removes, what podman's network stack (netavark) leaves in the host's firewall.
#
#   host-firewall.sh record <state dir>   (create: before the first container starts)
#   host-firewall.sh clean <state dir>    (destroy: after the scenario's network is gone)
#
# netavark adds NETAVARK* chains to iptables (filter and nat, IPv4 and IPv6), jumps to them
# from the built-in chains and, with iptables-nft, the nftables tables `ip filter`/`ip nat`
# (`ip6 ...`) that hold them; it removes none of that when its last network goes. `record`
# writes which of those chains and tables the host had; `clean` removes only the chains and
# tables that were not there then, and only when no container and no podman network other
# than the default `podman` remains (this host is shared: someone else's podman may be using
# them). Prints "removed ..." for each thing it removed (destroy reports changed on it).
set -euo pipefail
mode="${1:?usage: host-firewall.sh record|clean <state dir>}"
state="${2:?usage: host-firewall.sh record|clean <state dir>}"

tools=()
command -v iptables >/dev/null && tools+=(iptables)
command -v ip6tables >/dev/null && tools+=(ip6tables)

chains() {  # <tool> <table>: the NETAVARK* chains of that table, one a line
  "$1" -w -t "$2" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ { print $2 }' | sort
}

nft_tables() {  # every "family name" of the host's nftables tables, one a line
  nft list tables 2>/dev/null | awk '$1 == "table" { print $2, $3 }' | sort
}

if [ "$mode" = record ]; then
  mkdir -p "$state"
  # Kept from the first create of a run (create may run twice; destroy forgets it).
  [ -e "$state/firewall.recorded" ] && exit 0
  for tool in "${tools[@]}"; do
    for table in filter nat; do
      chains "$tool" "$table" > "$state/$tool-$table.chains"
    done
  done
  nft_tables > "$state/nft.tables"
  touch "$state/firewall.recorded"
  exit 0
fi

[ "$mode" = clean ] || { echo "unknown mode $mode" >&2; exit 2; }
[ -e "$state/firewall.recorded" ] || exit 0
others="$(podman network ls --format '{{.Name}}' | grep -vx podman || true)"
if [ -n "$others" ]; then
  echo "kept netavark's firewall rules: other podman networks remain: $(echo "$others" | tr '\n' ' ')"
  exit 0
fi
if [ -n "$(podman ps -aq)" ]; then
  echo "kept netavark's firewall rules: podman containers remain"
  exit 0
fi

for tool in "${tools[@]}"; do
  for table in filter nat; do
    new="$(comm -13 "$state/$tool-$table.chains" <(chains "$tool" "$table"))"
    [ -n "$new" ] || continue
    # First every rule that jumps to one of them (from any chain), then the chains.
    for chain in $new; do
      rules="$("$tool" -w -t "$table" -S | grep -E -- "-j $chain( |\$)" || true)"
      while read -r rule; do
        if [ -n "$rule" ]; then eval "$tool -w -t $table -D ${rule#-A }"; fi
      done <<< "$rules"
    done
    for chain in $new; do "$tool" -w -t "$table" -F "$chain"; done
    for chain in $new; do
      "$tool" -w -t "$table" -X "$chain"
      echo "removed $tool $table chain $chain"
    done
  done
done

# The nftables tables iptables-nft made for those chains, if new and now without a rule.
comm -13 "$state/nft.tables" <(nft_tables) | while read -r family name; do
  case "$family $name" in
    "ip filter" | "ip nat" | "ip6 filter" | "ip6 nat") ;;
    *) continue ;;
  esac
  if ! nft -j list table "$family" "$name" | grep -q '"rule"'; then
    nft delete table "$family" "$name"
    echo "removed nft table $family $name"
  fi
done
