# kvsctl.bash - bash completion of kvsctl (installed by make install into
# $(PREFIX)/share/bash-completion/completions/kvsctl).  Completes commands,
# options, -o formats, file arguments, and key names through `kvsctl ls`.
_kvsctl() {
    local cur prev cmd i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    local commands="get put rm ls watch txn members health status snapshot shell"
    local globals="--endpoints --token --cacert --cert --key --output --timeout --help"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --endpoints|--token|--cacert|--cert|--key|--output|-o|--timeout) ((i++)) ;;
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    case "$prev" in
        -o|--output) COMPREPLY=($(compgen -W "table json value" -- "$cur")); return ;;
        --cacert|--cert|--key|--file|-f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --endpoints|--token|--timeout|--ttl|--if-match|--limit|--after|--index|--since|--wait)
            return ;;
    esac
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
        return
    fi
    local opts=""
    case "$cmd" in
        put) opts="--file --ttl --if-match --create --string" ;;
        rm) opts="--if-match" ;;
        ls) opts="--values --limit --recursive --after" ;;
        watch) opts="--index --since --no-values --wait" ;;
        txn) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        snapshot) [ "$prev" = snapshot ] && COMPREPLY=($(compgen -W "save" -- "$cur")) \
                      || COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $globals" -- "$cur"))
    elif [[ "$cmd" =~ ^(get|put|rm|ls|watch)$ ]]; then
        # keys under what was typed so far, asked of the cluster (1 s at most)
        local dir="${cur%/*}"
        [ "$dir" = "$cur" ] && dir=""
        COMPREPLY=($(compgen -W "$(kvsctl --timeout 1s ls "$dir" -o value 2>/dev/null)" -- "$cur"))
    fi
}
complete -F _kvsctl kvsctl
