#!/usr/bin/env bash
# Parses one systemd unit file the way systemd reads it and checks what LANDER's units rely
# on: only [Unit], [Service], [Timer] and [Install] sections; every other line a comment or
# Key=value; a service's ExecStart runs an executable that exists; a template (name@.service)
# uses its instance (%i); a timer has something to trigger on.
set -euo pipefail
unit=$1
name=$(basename "$unit")
section=
exec_start=
has_instance=no
trigger=no
n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  case $line in
    ''|'#'*|';'*) continue ;;
    '['*']')
      section=${line#[}; section=${section%]}
      case $section in Unit|Service|Timer|Install) ;; *) echo "$name:$n: unknown section [$section]"; exit 1 ;; esac
      continue ;;
  esac
  [ -n "$section" ] || { echo "$name:$n: a key before any section"; exit 1; }
  case $line in
    [A-Za-z]*=*) ;;
    *) echo "$name:$n: not Key=value: $line"; exit 1 ;;
  esac
  key=${line%%=*}
  value=${line#*=}
  case $line in *%i*) has_instance=yes ;; esac
  [ "$section/$key" = Service/ExecStart ] && exec_start=$value
  case "$section/$key" in Timer/On*) trigger=yes ;; esac
done < "$unit"
case $name in
  *.service)
    [ -n "$exec_start" ] || { echo "$name: no ExecStart"; exit 1; }
    binary=${exec_start%% *}
    [ -x "$binary" ] || { echo "$name: ExecStart runs $binary, which is not installed"; exit 1; } ;;
  *.timer)
    [ "$trigger" = yes ] || { echo "$name: a timer with no On...= trigger"; exit 1; } ;;
esac
case $name in
  *@.service) [ "$has_instance" = yes ] || { echo "$name: a template that never uses %i"; exit 1; } ;;
esac
