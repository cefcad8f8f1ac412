# bash completion for kvmini (make install puts it in
# $(PREFIX)/share/bash-completion/completions/kvmini). The options and ctl
# commands are read from the kvmini being completed (its --help), so this
# file never lists them and never goes stale.

_kvmini_help_words() { # $1: kvmini, $2: the --help section's first words
	"$1" --help 2>/dev/null | awk -v sect="$2" '
		index($0, sect) == 1 { on = 1; next }
		on && /^$/ { exit }
		on && /^  [a-z-]/ { print $1 }'
}

_kvmini() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local kvmini=${COMP_WORDS[0]} cmd=${COMP_WORDS[1]} i nonopt

	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "run ctl ivshmem-server snapshot --help --version" -- "$cur"))
		return
	fi
	case $cmd in
	run)
		case $prev in
		--kernel | --initrd | --qmp)
			COMPREPLY=($(compgen -f -- "$cur"))
			return ;;
		--incoming)
			COMPREPLY=($(compgen -f -P file: -- "${cur#file:}"))
			return ;;
		--serial)
			COMPREPLY=($(compgen -W "stdio none file=" -- "$cur"))
			return ;;
		--disk | --scsi-disk)
			COMPREPLY=($(compgen -W "path=" -- "$cur"))
			return ;;
		esac
		COMPREPLY=($(compgen -W "$(_kvmini_help_words "$kvmini" "Options of kvmini run")" -- "$cur"))
		;;
	ctl)
		# kvmini ctl [--wait SECONDS] SOCKET COMMAND [ARGS]
		nonopt=0
		for ((i = 2; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--wait) ((i++)) ;;
			--wait=*) ;;
			*) ((nonopt++)) ;;
			esac
		done
		[ "$prev" = --wait ] && return
		case $nonopt in
		0) COMPREPLY=($(compgen -W "--wait" -- "$cur") $(compgen -f -- "$cur")) ;;
		1) COMPREPLY=($(compgen -W "$(_kvmini_help_words "$kvmini" "Commands of kvmini ctl" | grep -v '^--')" -- "$cur")) ;;
		*) [ "$prev" = snapshot ] && COMPREPLY=($(compgen -f -- "$cur")) ;;
		esac
		;;
	ivshmem-server)
		case $prev in
		--socket | --path) COMPREPLY=($(compgen -f -- "$cur")) ;;
		*) COMPREPLY=($(compgen -W "--socket --shm --path --size --vectors" -- "$cur")) ;;
		esac
		;;
	snapshot)
		if [ "$COMP_CWORD" -eq 2 ]; then
			COMPREPLY=($(compgen -W "inspect" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "--verify" -- "$cur") $(compgen -f -- "$cur"))
		fi
		;;
	esac
}
complete -o filenames -F _kvmini kvmini
