/*
 * main.c - the cod binary. Everything else lives in libcod.a.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cod_cli_main(argc, argv);
}
