// Two processes, one GPU each, sharing VMM allocations (cuMemCreate + cuMemExportToShareableHandle
// as POSIX fds, passed over a Unix socket as FlashInfer and torch symmetric memory pass them):
// the bytes of a small handle are the same wherever it is mapped, here or in the peer, and a
// kernel that reaches the peer's memory through a table of pointers in device memory (FlashInfer's
// all-reduce workspace) synchronises with the peer's launch of it. Then a multicast object made by
// rank 0, imported by rank 1, with both devices added and their memory bound (FlashInfer's MNNVL
// workspace). Prints `rank R key value`.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda.h>
#include <cuda_runtime.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            fprintf(stderr, "rank %d: %s: %s\n", rank, #call, cudaGetErrorString(e_));    \
            return 4;                                                                     \
        }                                                                                 \
    } while (0)
#define CHECK_CU(call)                                                                    \
    do {                                                                                  \
        CUresult r_ = (call);                                                             \
        if (r_ != CUDA_SUCCESS) {                                                         \
            fprintf(stderr, "rank %d: %s: %d\n", rank, #call, (int)r_);                   \
            return 4;                                                                     \
        }                                                                                 \
    } while (0)

template <typename F> static F driver(const char *name)
{
    return (F)dlsym(RTLD_DEFAULT, name);
}

__global__ void table_exchange(int *const *table)
{
    // stands for a Lamport all-reduce: write into the peer's buffer, read mine
    table[1][threadIdx.x] = table[0][threadIdx.x] + 1;
}

static long long now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int rank;

static bool send_fds(int sock, const int *fds, int n)
{
    char byte = 'f';
    iovec io = {&byte, 1};
    char control[CMSG_SPACE(4 * sizeof(int))] = {};
    msghdr msg = {};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    return sendmsg(sock, &msg, 0) == 1;
}

static bool recv_fds(int sock, int *fds, int n)
{
    char byte;
    iovec io = {&byte, 1};
    char control[CMSG_SPACE(4 * sizeof(int))] = {};
    msghdr msg = {};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(sock, &msg, 0) != 1)
        return false;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
        return false;
    memcpy(fds, CMSG_DATA(c), n * sizeof(int));
    return true;
}

static bool barrier(int sock)
{
    char token = 'b';
    return write(sock, &token, 1) == 1 && read(sock, &token, 1) == 1;
}

typedef CUresult (*create_fn)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
typedef CUresult (*export_fn)(void *, CUmemGenericAllocationHandle, CUmemAllocationHandleType, unsigned long long);
typedef CUresult (*import_fn)(CUmemGenericAllocationHandle *, void *, CUmemAllocationHandleType);
typedef CUresult (*reserve_fn)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
typedef CUresult (*map_fn)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
typedef CUresult (*unmap_fn)(CUdeviceptr, size_t);
typedef CUresult (*access_fn)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
typedef CUresult (*attr_fn)(int *, CUdevice_attribute, CUdevice);
typedef CUresult (*mc_create_fn)(CUmemGenericAllocationHandle *, const CUmulticastObjectProp *);
typedef CUresult (*mc_add_fn)(CUmemGenericAllocationHandle, CUdevice);
typedef CUresult (*mc_bind_fn)(CUmemGenericAllocationHandle, size_t, CUmemGenericAllocationHandle, size_t, size_t,
                               unsigned long long);

static int run(int sock)
{
    const size_t small = 2u << 20, big = 64u << 20;
    CHECK(cudaSetDevice(rank));
    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = rank;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CUmemGenericAllocationHandle mine[2], peer[2];
    CHECK_CU(driver<create_fn>("cuMemCreate")(&mine[0], small, &prop, 0));
    CHECK_CU(driver<create_fn>("cuMemCreate")(&mine[1], big, &prop, 0));
    int fds[2], peer_fds[2];
    for (int i = 0; i < 2; i++)
        CHECK_CU(driver<export_fn>("cuMemExportToShareableHandle")(&fds[i], mine[i],
                                                                   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    if (!send_fds(sock, fds, 2) || !recv_fds(sock, peer_fds, 2))
        return 5;
    for (int i = 0; i < 2; i++) {
        CHECK_CU(driver<import_fn>("cuMemImportFromShareableHandle")(&peer[i], (void *)(long)peer_fds[i],
                                                                     CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
        close(fds[i]);
        close(peer_fds[i]);
    }
    // one reserve: my small, the peer's small, my small again, my big, the peer's big
    CUdeviceptr va = 0;
    const size_t span = 3 * small + 2 * big;
    CHECK_CU(driver<reserve_fn>("cuMemAddressReserve")(&va, span, 0, 0, 0));
    CUdeviceptr my_small = va, peer_small = va + small, my_small_again = va + 2 * small;
    CUdeviceptr my_big = va + 3 * small, peer_big = my_big + big;
    CHECK_CU(driver<map_fn>("cuMemMap")(my_small, small, 0, mine[0], 0));
    CHECK_CU(driver<map_fn>("cuMemMap")(peer_small, small, 0, peer[0], 0));
    CHECK_CU(driver<map_fn>("cuMemMap")(my_small_again, small, 0, mine[0], 0));
    CHECK_CU(driver<map_fn>("cuMemMap")(my_big, big, 0, mine[1], 0));
    CHECK_CU(driver<map_fn>("cuMemMap")(peer_big, big, 0, peer[1], 0));
    CUmemAccessDesc access = {};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = rank;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CHECK_CU(driver<access_fn>("cuMemSetAccess")(va, span, &access, 1));

    int value = 1000 + rank, seen = 0;
    CHECK(cudaMemcpy((void *)my_small, &value, sizeof value, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(&seen, (void *)my_small_again, sizeof seen, cudaMemcpyDeviceToHost));
    printf("rank %d second_mapping %d\n", rank, seen);
    if (!barrier(sock))
        return 5;
    CHECK(cudaMemcpy(&seen, (void *)peer_small, sizeof seen, cudaMemcpyDeviceToHost));
    printf("rank %d peer_value %d\n", rank, seen);
    int mark = 2000 + rank;
    CHECK(cudaMemcpy((int *)peer_small + 1, &mark, sizeof mark, cudaMemcpyHostToDevice));
    if (!barrier(sock))
        return 5;
    // the handle keeps its bytes while unmapped, as physical memory does
    CHECK_CU(driver<unmap_fn>("cuMemUnmap")(my_small, small));
    CHECK_CU(driver<map_fn>("cuMemMap")(my_small, small, 0, mine[0], 0));
    CHECK(cudaMemcpy(&seen, (int *)my_small + 1, sizeof seen, cudaMemcpyDeviceToHost));
    printf("rank %d written_by_peer %d\n", rank, seen);

    // the pointer table in my device memory: [my big buffer, the peer's]
    int *const host_table[2] = {(int *)my_big, (int *)peer_big};
    int **table = nullptr;
    CHECK(cudaMalloc(&table, sizeof host_table));
    CHECK(cudaMemcpy(table, host_table, sizeof host_table, cudaMemcpyHostToDevice));
    // rank r arrives r x 10 ms late
    CHECK(cudaDeviceSynchronize());
    printf("rank %d t0 %lld\n", rank, now_ns());
    timespec late = {0, rank * 10000000L};
    nanosleep(&late, nullptr);
    printf("rank %d issued %lld\n", rank, now_ns());
    table_exchange<<<1, 32>>>(table);
    CHECK(cudaDeviceSynchronize());
    printf("rank %d done %lld\n", rank, now_ns());

    // a multicast object over both devices
    int supported = 0;
    CHECK_CU(driver<attr_fn>("cuDeviceGetAttribute")(&supported, CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED, rank));
    printf("rank %d multicast_supported %d\n", rank, supported);
    CUmulticastObjectProp mc_prop = {};
    mc_prop.numDevices = 2;
    mc_prop.size = small;
    mc_prop.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CUmemGenericAllocationHandle mc = 0;
    int mc_fd = -1;
    if (rank == 0) {
        CHECK_CU(driver<mc_create_fn>("cuMulticastCreate")(&mc, &mc_prop));
        CHECK_CU(driver<export_fn>("cuMemExportToShareableHandle")(&mc_fd, mc, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
        if (!send_fds(sock, &mc_fd, 1))
            return 5;
    } else {
        if (!recv_fds(sock, &mc_fd, 1))
            return 5;
        CHECK_CU(driver<import_fn>("cuMemImportFromShareableHandle")(&mc, (void *)(long)mc_fd,
                                                                     CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
    }
    close(mc_fd);
    CHECK_CU(driver<mc_add_fn>("cuMulticastAddDevice")(mc, rank));
    if (!barrier(sock))
        return 5;
    // both devices are in: another is more than the object was made for
    printf("rank %d third_device_refused %d\n", rank,
           driver<mc_add_fn>("cuMulticastAddDevice")(mc, 1 - rank) == CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr mc_va = 0;
    CHECK_CU(driver<reserve_fn>("cuMemAddressReserve")(&mc_va, small, 0, 0, 0));
    CHECK_CU(driver<map_fn>("cuMemMap")(mc_va, small, 0, mc, 0));
    CHECK_CU(driver<access_fn>("cuMemSetAccess")(mc_va, small, &access, 1));
    CHECK_CU(driver<mc_bind_fn>("cuMulticastBindMem")(mc, 0, mine[0], 0, small, 0));
    printf("rank %d multicast_bound 1\n", rank);
    return 0;
}

int main()
{
    int socks[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, socks) != 0)
        return 2;
    pid_t child = fork();
    rank = child == 0 ? 1 : 0;
    int status = run(socks[rank]);
    fflush(stdout);
    if (rank == 0) {
        int child_status = 0;
        waitpid(child, &child_status, 0);
        return status != 0 ? status : (WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 6);
    }
    return status;
}
