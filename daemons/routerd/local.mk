# routerd
