#include "trace/trace-hw_aggregate.h"
