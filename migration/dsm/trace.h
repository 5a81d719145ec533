#include "trace/trace-migration_dsm.h"
