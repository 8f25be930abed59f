complete -c collector -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c collector -l generate -d 'Print the man page or a shell\'s completions and exit (for packaging)' -r -f -a "man\t'The man page (roff)'
complete-bash\t'bash completions'
complete-zsh\t'zsh completions'
complete-fish\t'fish completions'"
complete -c collector -l json -d 'Print a summary of the pass as JSON on stdout (collected, quarantined, waiting, pruned, errors; with [store], what was taken from the store)'
complete -c collector -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c collector -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c collector -s h -l help -d 'Print help (see more with \'--help\')'
complete -c collector -s V -l version -d 'Print version'
