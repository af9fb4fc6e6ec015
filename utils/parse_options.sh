#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by recipes after they define their defaults:
#   stage=0; nj=4; . utils/parse_options.sh
# Any variable already defined in the calling script can be set with --name value or
# --name=value (dashes in the name map to underscores). --help prints the variables.
# Remaining positional arguments are left in "$@".

_po_help() {
  echo "Usage: $0 [--option value ...] [args]"
  echo "Options (current value):"
  grep -oE '^[a-z_][a-z0-9_]*=' "$0" | tr -d '=' | sort -u | while read -r v; do
    printf '  --%s (%s)\n' "$v" "${!v-}"
  done
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) _po_help; exit 0 ;;
    --*=*) _po_name=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      _po_name=$1; _po_value=$2; shift 2 ;;
    *) break ;;
  esac
  _po_name=${_po_name#--}
  _po_name=${_po_name//-/_}
  if [ -z "${!_po_name+x}" ]; then
    echo "$0: unknown option --${_po_name}; run with --help to list the options" >&2
    exit 1
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done
unset _po_name _po_value
true
