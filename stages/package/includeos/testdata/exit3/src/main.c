/* A C service: IncludeOS calls main with its command line split at
   white space; exit ends the service with a status. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	printf("exit3: %d arguments\n", argc);
	printf("exit3: about to exit with status 3\n");
	fflush(stdout);
	exit(3);
}
