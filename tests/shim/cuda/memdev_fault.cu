// A host dereference of a large (unbacked) device allocation must die naming it.
#include <cuda_runtime.h>
#include <stdio.h>

int main()
{
    char *big = NULL;
    if (cudaMalloc((void **)&big, (size_t)64 << 20) != cudaSuccess)
        return 3;
    printf("allocated %p\n", (void *)big);
    fflush(stdout);
    big[12345] = 1;  // faults: the range is reserved PROT_NONE
    printf("survived\n");
    return 0;
}
