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
complete -c switcher -n "__fish_switcher_needs_command" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_needs_command" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_needs_command" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_needs_command" -s V -l version -d 'Print version'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "rollback" -d 'Go back to the previous good release (stop, flip, start, verify)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "releases" -d 'List the releases on disk per component, marking the running, the previous and failed ones'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "status" -d 'Print the status page\'s facts: Last, Running, Status per component'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "check" -d 'Check the config and the machine before the first deploy: folders, owners and modes, the drop folder\'s group, ports, whether every program of each command resolves, the nginx site nginx loads, the systemd unit\'s writable paths, the state files, and the store ([store]): that it answers, and honours conditional writes'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "deploy" -d 'Deploy exactly this staged artifact now, and pin what it deployed'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "pin" -d 'Keep components on what runs: automatic passes leave them alone'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "unpin" -d 'Lift pins: automatic passes deploy these components again'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "freeze" -d 'No automatic deploys for any component (the collector keeps collecting)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "unfreeze" -d 'Lift the freeze'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "retry" -d 'Clear an artifact\'s failure mark, so that the next pass may try it again'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "follow" -d 'Which branches automatic passes deploy, from now on (overrides `switcher.branches` until `--default`)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "nginx-site" -d 'Print the nginx site for this config: root, [nginx] listen, the frontend and backend components (what the package writes to /etc/nginx/sites-available/cutover)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "systemd-dropin" -d 'Print the drop-in that lets cutover.service write this config\'s root and drop folder (what the package writes to /etc/systemd/system/cutover.service.d/paths.conf)'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "fleet" -d 'Print this VM\'s fleet group from the store ([store], [fleet]): per VM and component Running, Last, Status, Sync and when the store last saw the VM; VMs not seen for two periods are named missing; halted rollouts with where and why'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "watch" -d 'Run until stopped: collector then switcher within a second of an upload\'s marker landing in the drop folder (inotify), and every status.period anyway'
complete -c switcher -n "__fish_switcher_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand releases" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand releases" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand status" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand status" -l json -d 'Print the documented JSON (schema 2) instead of a table'
complete -c switcher -n "__fish_switcher_using_subcommand status" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand check" -l user -d 'The user that runs collector and switcher [default: cutover when run as root and that user exists, else the current user]' -r
complete -c switcher -n "__fish_switcher_using_subcommand check" -l nginx-conf -d 'nginx\'s main config file, when nginx is not run from its own (default: asked with `nginx -T`, which lists every file nginx loads; without root, /etc/nginx/nginx.conf and its includes)' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand check" -l systemd-dir -d 'A folder systemd reads cutover.service and its drop-ins from (repeat it) [default: /etc/systemd/system, /run/systemd/system, /lib/systemd/system, /usr/lib/systemd/system]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand check" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand check" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -l component -d 'Only this component of the artifact (repeatable) [default: all it carries]' -r
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -l reason -d 'Why, recorded with the pin' -r
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand deploy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand pin" -l reason -d 'Why, shown on the status page' -r
complete -c switcher -n "__fish_switcher_using_subcommand pin" -l until -d 'Lapse by itself at this time (RFC 3339 with a zone) or after this long ("8h", "30m")' -r
complete -c switcher -n "__fish_switcher_using_subcommand pin" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand pin" -l fleet -d 'For the whole group (`[fleet]`): written to the store, every VM of the group honours it (docs/fleet.md)'
complete -c switcher -n "__fish_switcher_using_subcommand pin" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand pin" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand pin" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand pin" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -l fleet -d 'For the whole group (`[fleet]`): written to the store, every VM of the group honours it (docs/fleet.md)'
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand unpin" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -l reason -d 'Why, shown on the status page' -r
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -l until -d 'Lapse by itself at this time (RFC 3339 with a zone) or after this long ("8h", "30m")' -r
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -l fleet -d 'For the whole group (`[fleet]`): written to the store, every VM of the group honours it (docs/fleet.md)'
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand freeze" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -l fleet -d 'For the whole group (`[fleet]`): written to the store, every VM of the group honours it (docs/fleet.md)'
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand unfreeze" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand retry" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand retry" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand retry" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand retry" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand retry" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l reason -d 'Why, shown on the status page' -r
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l until -d 'Go back to the config\'s branches by itself at this time (RFC 3339 with a zone) or after this long ("8h")' -r
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l any -d 'Any branch'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l default -d 'Back to the config\'s `switcher.branches`'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand follow" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand nginx-site" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand nginx-site" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand nginx-site" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand nginx-site" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand nginx-site" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand systemd-dropin" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand systemd-dropin" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand systemd-dropin" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand systemd-dropin" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand systemd-dropin" -s h -l help -d 'Print help'
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -l out -d 'Write fleet.html and fleet.json here instead of state/' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -l json -d 'Print the JSON (what fleet.json holds) instead of the table'
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand fleet" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -l config -d 'The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml]' -r -F
complete -c switcher -n "__fish_switcher_using_subcommand watch" -l dry-run -d 'Print what would be done, in plain words, and change nothing: one pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`, `retry`, `follow`. The other commands change nothing anyway'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s v -l verbose -d 'More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides)'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s q -l quiet -d 'Less log output: -q errors only, -qq nothing'
complete -c switcher -n "__fish_switcher_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "rollback" -d 'Go back to the previous good release (stop, flip, start, verify)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "releases" -d 'List the releases on disk per component, marking the running, the previous and failed ones'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "status" -d 'Print the status page\'s facts: Last, Running, Status per component'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "check" -d 'Check the config and the machine before the first deploy: folders, owners and modes, the drop folder\'s group, ports, whether every program of each command resolves, the nginx site nginx loads, the systemd unit\'s writable paths, the state files, and the store ([store]): that it answers, and honours conditional writes'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "deploy" -d 'Deploy exactly this staged artifact now, and pin what it deployed'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "pin" -d 'Keep components on what runs: automatic passes leave them alone'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "unpin" -d 'Lift pins: automatic passes deploy these components again'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "freeze" -d 'No automatic deploys for any component (the collector keeps collecting)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "unfreeze" -d 'Lift the freeze'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "retry" -d 'Clear an artifact\'s failure mark, so that the next pass may try it again'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "follow" -d 'Which branches automatic passes deploy, from now on (overrides `switcher.branches` until `--default`)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "nginx-site" -d 'Print the nginx site for this config: root, [nginx] listen, the frontend and backend components (what the package writes to /etc/nginx/sites-available/cutover)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "systemd-dropin" -d 'Print the drop-in that lets cutover.service write this config\'s root and drop folder (what the package writes to /etc/systemd/system/cutover.service.d/paths.conf)'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "fleet" -d 'Print this VM\'s fleet group from the store ([store], [fleet]): per VM and component Running, Last, Status, Sync and when the store last saw the VM; VMs not seen for two periods are named missing; halted rollouts with where and why'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "watch" -d 'Run until stopped: collector then switcher within a second of an upload\'s marker landing in the drop folder (inotify), and every status.period anyway'
complete -c switcher -n "__fish_switcher_using_subcommand help; and not __fish_seen_subcommand_from rollback releases status check deploy pin unpin freeze unfreeze retry follow nginx-site systemd-dropin fleet watch help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
