# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_switcher_global_optspecs
    string join \n config= dry-run v/verbose q/quiet generate= h/help V/version
end

function __fish_switcher_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_switcher_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_switcher_using_subcommand
    set -l cmd (__fish_switcher_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c switcher -n "__fish_switcher_needs_command" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_needs_command" -l generate -d 'Print the man page or a shell\'s completions and exit (for packaging)' -r -f -a "man\t'The man page (roff)'
complete-bash\t'bash completions'
complete-zsh\t'zsh completions'
complete-fish\t'fish completions'"
complete -c switcher -n "__fish_switcher_needs_command" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_needs_command" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_needs_command" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_needs_command" -s V -l version -d 'Print version'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "rollback" -d 'Go back to the previous good release (stop, flip, start, verify)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "releases" -d 'List the releases on disk per component, marking the running, the previous and failed ones'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "status" -d 'Print the status page\'s facts: Last, Running, Status per component'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "check" -d 'Check the config and the machine before the first deploy: folders, owners and modes, the drop folder\'s group, ports, whether each command resolves, the nginx site, the state files'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "watch" -d 'Run until stopped: collector then switcher within a second of an upload\'s marker landing in the drop folder (inotify), and every status.period anyway'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand releases" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand status" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand status" -l json -d 'Print the documented JSON (schema 1) instead of a table'
complete -c switcher -n "__fish_switcher_using_subcommand status" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand check" -l user -d 'The user that runs collector and switcher [default: cutover when run as root and that user exists, else the current user]' -r
complete -c switcher -n "__fish_switcher_using_subcommand check" -l nginx-dir -d 'nginx\'s configuration folder, searched (sites-enabled/, conf.d/) for a site serving current/frontend' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand check" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand check" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand watch" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, or `rollback`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "rollback" -d 'Go back to the previous good release (stop, flip, start, verify)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "releases" -d 'List the releases on disk per component, marking the running, the previous and failed ones'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "status" -d 'Print the status page\'s facts: Last, Running, Status per component'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "check" -d 'Check the config and the machine before the first deploy: folders, owners and modes, the drop folder\'s group, ports, whether each command resolves, the nginx site, the state files'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "watch" -d 'Run until stopped: collector then switcher within a second of an upload\'s marker landing in the drop folder (inotify), and every status.period anyway'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check watch help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
