// Keeps every shared object loaded (dlclose does nothing): Open MPI unloads its components in
// MPI_Finalize, and LeakSanitizer can then name no frame of their allocations to suppress.
int dlclose(void* handle) { (void)handle; return 0; }
