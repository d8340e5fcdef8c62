/* A C program for the includeos base: IncludeOS calls main; exit(N)
   powers the guest off, and unikfile reports N as the app's exit status
   (a main that returns would leave IncludeOS's event loop running). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
	for (int i = 3; i > 0; i--)
		printf("countdown: %d\n", i);
	printf("countdown: done, exiting with status 3\n");
	fflush(stdout);
	exit(3);
}
