# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_artifact_name_global_optspecs
    string join \n generate= h/help V/version
end

function __fish_artifact_name_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_artifact_name_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_artifact_name_using_subcommand
    set -l cmd (__fish_artifact_name_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c artifact-name -n "__fish_artifact_name_needs_command" -l generate -d 'Print the man page or a shell\'s completions and exit (for packaging)' -r -f -a "man\t''
complete-bash\t''
complete-zsh\t''
complete-fish\t''"
complete -c artifact-name -n "__fish_artifact_name_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c artifact-name -n "__fish_artifact_name_needs_command" -s V -l version -d 'Print version'
complete -c artifact-name -n "__fish_artifact_name_needs_command" -f -a "format" -d 'Prints the artifact name for the given parts'
complete -c artifact-name -n "__fish_artifact_name_needs_command" -f -a "parse" -d 'Prints a name\'s parts as JSON: kind, build_time (RFC 3339, UTC), version, branch (with \'/\' restored), ext'
complete -c artifact-name -n "__fish_artifact_name_needs_command" -f -a "deliver" -d 'Packs a build output folder, names it by the contract, uploads it to the VMs\' drop folders over ssh (or publishes it to an S3-compatible store, --to), and optionally waits until it runs'
complete -c artifact-name -n "__fish_artifact_name_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -l kind -d 'The kind: [a-z][a-z0-9-]*, e.g. full or frontend' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -l version -d 'The version: one or more of [0-9A-Za-z.+-]' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -l branch -d 'The git branch as git spells it, e.g. feature/x' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -l time -d 'The build time, RFC 3339 (converted to UTC); defaults to now' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -l ext -d 'The archive format: tar.gz, tgz, tar.zst or tar' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand format" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand parse" -s h -l help -d 'Print help'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l from -d 'The build output folder: it holds one folder per component (backend/, frontend/, ...)' -r -F
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l kind -d 'The kind: full, frontend, or any [a-z][a-z0-9-]* (other kinds need --components)' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l components -d 'The component folders the artifact carries, comma-separated. Default by kind: full → backend,frontend; frontend → frontend' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l version -d 'The version, [0-9A-Za-z.+-]+. Default: [package] version of Cargo.toml, else "version" of package.json (in --from, then in the current folder), else `git describe --tags --always` without a leading \'v\'' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l branch -d 'The git branch. Default: $GITHUB_REF_NAME, $BITBUCKET_BRANCH, $CI_COMMIT_REF_NAME, else `git rev-parse --abbrev-ref HEAD`' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l time -d 'The build time, RFC 3339 (converted to UTC); defaults to now' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l out -d 'Where the artifact and its .sha256 marker are written' -r -F
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l target -d 'A drop folder to upload to, over ssh with rsync; repeatable' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l to -d 'An S3-compatible store to publish to, beside or instead of the targets: drop/<name>, then its marker, each created only where nothing is (a published artifact is never overwritten). Needs the `s3` feature; see the --store-* options' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-endpoint -d 'The S3 endpoint, http:// or https://; not set: AWS S3 in the region' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-region -d 'The region requests are signed for' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-path-style -d 'Path-style addressing (endpoint/bucket/key); default: on with --store-endpoint, off for AWS. --store-path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-credentials-file -d 'A TOML file with access_key_id and secret_access_key, readable only by its owner; not set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY' -r -F
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-timeout -d 'The time limit of a request\'s connect and of each read or write' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l store-url -d 'The store --group reads when there is no --to (the artifact went over ssh, or elsewhere)' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l port -d 'The ssh port (ssh -p)' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l identity -d 'The ssh private key (ssh -i)' -r -F
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l known-hosts -d 'A known_hosts file holding the VMs\' host keys; unknown hosts are then refused (StrictHostKeyChecking=yes)' -r -F
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l ssh-option -d 'An ssh option (ssh -o OPTION), e.g. ProxyJump=bastion; repeatable. $CUTOVER_SSH replaces the ssh command itself (default "ssh")' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l retries -d 'How often a failed upload is tried again, with growing pauses' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l bwlimit -d 'Limits the upload\'s bandwidth in KiB/s (rsync --bwlimit)' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l wait -d 'After the upload, polls this status page (http://HOST/ or the URL of its deploy-status.json) until each component runs the artifact or a build made later, or the VM holds it (frozen, or a component pinned: exit 8); repeatable. Without URL, waits for the --group' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l group -d 'Waits (implies --wait) until every live VM of this fleet group runs the artifact, reading the VMs\' reports in the store (--to, else --store-url); exit 9 if the group\'s rollout halted. Prints the group\'s table on stdout at the end. Needs the `s3` feature' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l wait-timeout -d 'How long --wait waits, e.g. 15m or 90s' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l wait-interval -d 'How often --wait polls' -r
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -l gzip -d 'Packs tar.gz instead of tar.zst'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand deliver" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand help; and not __fish_seen_subcommand_from format parse deliver help" -f -a "format" -d 'Prints the artifact name for the given parts'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand help; and not __fish_seen_subcommand_from format parse deliver help" -f -a "parse" -d 'Prints a name\'s parts as JSON: kind, build_time (RFC 3339, UTC), version, branch (with \'/\' restored), ext'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand help; and not __fish_seen_subcommand_from format parse deliver help" -f -a "deliver" -d 'Packs a build output folder, names it by the contract, uploads it to the VMs\' drop folders over ssh (or publishes it to an S3-compatible store, --to), and optionally waits until it runs'
complete -c artifact-name -n "__fish_artifact_name_using_subcommand help; and not __fish_seen_subcommand_from format parse deliver help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
