/*
 * completion.c - `cod completion bash|zsh`: shell completion scripts.
 *
 * The scripts are small and ask cod itself what may come next
 * (`cod completion __complete WORD...`), so they never go stale: the
 * candidates come from the same tables that drive the commands. In that
 * mode (cli->complete) cod_cli_dispatch() prints a group's subcommands and
 * cod_cli_parse() a command's flags (or the values of --output) instead of
 * running anything; the script offers subcommands or flags, and file
 * names where a command takes a file.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/banned.h"

static const char bash_script[] =
    "# bash completion for cod. Load it with:\n"
    "#   source <(cod completion bash)\n"
    "# or install it: cod completion bash > /etc/bash_completion.d/cod\n"
    "_cod_complete() {\n"
    "\tlocal cur=${COMP_WORDS[COMP_CWORD]} line\n"
    "\tlocal -a words=() out=()\n"
    "\twhile IFS= read -r line; do out+=(\"$line\"); done < <(\"${COMP_WORDS[0]}\" completion __complete \\\n"
    "\t\t\"${COMP_WORDS[@]:1:COMP_CWORD-1}\" 2>/dev/null)\n"
    "\tfor line in \"${out[@]}\"; do\n"
    "\t\tif [[ $cur == -* ]]; then [[ $line == -* ]] && words+=(\"$line\")\n"
    "\t\telse [[ $line != -* ]] && words+=(\"$line\"); fi\n"
    "\tdone\n"
    "\tCOMPREPLY=()\n"
    "\t# nothing to offer: the shell completes file names (complete -o default)\n"
    "\t((${#words[@]})) && COMPREPLY=($(compgen -W \"${words[*]}\" -- \"$cur\"))\n"
    "\treturn 0\n"
    "}\n"
    "complete -o default -F _cod_complete cod\n";

static const char zsh_script[] =
    "#compdef cod\n"
    "# zsh completion for cod. Load it with:\n"
    "#   source <(cod completion zsh)\n"
    "# or install it as _cod in a directory of $fpath.\n"
    "_cod() {\n"
    "\tlocal -a out cands\n"
    "\tout=(\"${(@f)$(${words[1]} completion __complete \"${(@)words[2,CURRENT-1]}\" 2>/dev/null)}\")\n"
    "\tif [[ $PREFIX == -* ]]; then cands=(${(M)out:#-*}); else cands=(${out:#-*}); fi\n"
    "\tif (( ${#cands} )); then compadd -a cands; else _files; fi\n"
    "}\n"
    "if (( $+functions[compdef] )); then compdef _cod cod; fi\n";

static const char completion_help[] =
    "Print a shell completion script for bash or zsh. Completion offers command\n"
    "groups, subcommands, flags and the values of --output; elsewhere, file names.\n"
    "The script asks cod itself, so it follows cod's commands as they change.\n\n"
    "Examples:\n"
    "  source <(cod completion bash)\n"
    "  cod completion bash > /etc/bash_completion.d/cod\n"
    "  cod completion zsh > \"${fpath[1]}/_cod\"";

/* `cod completion __complete WORD...`: what may follow the words. */
static int complete(struct cod_cli *cli, int argc, char **argv)
{
	cli->complete = true;
	if (argc < 1) {
		for (const struct cod_command *c = cod_cli_groups(); c->name; c++)
			printf("%s\n", c->name);
		printf("--help\n--version\n");
		return 0;
	}
	for (const struct cod_command *c = cod_cli_groups(); c->name; c++) {
		if (!strcmp(c->name, argv[0])) {
			if (!strcmp(c->name, "completion")) {
				if (argc == 1)
					printf("bash\nzsh\n");
				return 0;
			}
			c->fn(cli, argc, argv);
			return 0;
		}
	}
	return 0; /* an unknown command: nothing to offer */
}

int cod_cmd_completion(struct cod_cli *cli, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "__complete"))
		return complete(cli, argc - 2, argv + 2);
	const char *pos[1];
	int npos;
	struct cod_flag flags[] = {COD_FLAGS_END};
	int rc = cod_cli_parse(cli, argc, argv, flags, "completion bash|zsh", completion_help, pos, &npos, 1);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos < 1)
		return cod_cli_usage_error("completion", "missing argument SHELL (bash or zsh)");
	if (!strcmp(pos[0], "bash"))
		fputs(bash_script, stdout);
	else if (!strcmp(pos[0], "zsh"))
		fputs(zsh_script, stdout);
	else
		return cod_cli_usage_error("completion", "shell \"%s\" is not supported; use bash or zsh",
					   pos[0]);
	return 0;
}
