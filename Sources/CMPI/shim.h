// Open MPI (Debian: libopenmpi-dev). Open MPI defines its handles as macros over the addresses of
// global structs (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, …), which Swift cannot import:
// each one is wrapped here in a static inline getter. Handles arrive in Swift as OpaquePointer?.
#ifndef GRADFLOW_CMPI_SHIM_H
#define GRADFLOW_CMPI_SHIM_H
#include <mpi.h>

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
#endif
