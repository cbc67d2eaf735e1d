// Open MPI (Debian: libopenmpi-dev). Open MPI defines its handles as macros over the addresses of
// global structs (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, …), which Swift cannot import:
// each one is wrapped here in a static inline getter. Handles arrive in Swift as OpaquePointer?.
#ifndef GRADFLOW_CMPI_SHIM_H
#define GRADFLOW_CMPI_SHIM_H
#include <mpi.h>
#include <unistd.h>

static inline MPI_Comm gf_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype gf_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype gf_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype gf_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype gf_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op gf_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op gf_mpi_max(void) { return MPI_MAX; }
static inline void *gf_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int gf_mpi_success(void) { return MPI_SUCCESS; }
static inline int gf_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int gf_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int gf_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

// Waits for a non-blocking operation by testing it and sleeping `sleep_us` between tests (after a
// few tests in a row, for the short ones). A blocking MPI call spins in Open MPI's progress loop
// instead; on a machine with no spare core that spinning takes the CPU from the kernel's TCP
// stack and from the other ranks' compute (docs/SCALING.md, "Why TCP cost 3–5× the model").
static inline int gf_mpi_wait_sleeping(MPI_Request *request, int sleep_us) {
    int done = 0, tries = 0, rc;
    for (;;) {
        rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        if (++tries > 16 && sleep_us > 0) usleep((useconds_t)sleep_us);
    }
}

// In-place non-blocking allreduce, waited for as above.
static inline int gf_mpi_allreduce_sleeping(void *buffer, int count, MPI_Datatype type, MPI_Op op, int sleep_us) {
    MPI_Request request;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buffer, count, type, op, MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS) return rc;
    return gf_mpi_wait_sleeping(&request, sleep_us);
}

// Non-blocking broadcast from rank 0, waited for as above.
static inline int gf_mpi_bcast_sleeping(void *buffer, int count, MPI_Datatype type, int sleep_us) {
    MPI_Request request;
    int rc = MPI_Ibcast(buffer, count, type, 0, MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS) return rc;
    return gf_mpi_wait_sleeping(&request, sleep_us);
}
#endif
