#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by recipes after they define their defaults:
#   stage=0     # first stage to run
#   nj=4        # parallel jobs
#   . utils/parse_options.sh
# Any variable already defined in the calling script can be set with --name value or
# --name=value (dashes in the name map to underscores). --help lists the options: the
# variables assigned above the line that sources this file, each with the trailing
# comment of its line as help. Remaining positional arguments are left in "$@".

_po_script=${BASH_SOURCE[1]:-$0}
[ -r "$_po_script" ] || _po_script=${_po_script##*/}  # the caller cd'ed into its own directory
_po_line=${BASH_LINENO[0]}  # where the caller sources this file: its options are above

_po_help() {
  local line name help
  local -A seen=()
  echo "Usage: $0 [--option value ...] [args]"
  echo "Options (current value): help"
  while IFS= read -r line; do
    [[ $line =~ ^([a-z_][a-z0-9_]*)= ]] || continue
    name=${BASH_REMATCH[1]}
    [ -z "${seen[$name]-}" ] || continue
    seen[$name]=1
    help=${line#*[[:space:]]#}  # the comment starts at the first " #" of the line
    [ "$help" = "$line" ] && help=""
    printf '  --%s (%s): %s\n' "$name" "${!name-}" "${help#"${help%%[![:space:]]*}"}"
  done < <(head -n "$((_po_line - 1))" "$_po_script")
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
unset _po_name _po_value _po_script _po_line
true
