/*
 * aggvm DSM: QMP commands when the aggregate machine is not built
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-aggregate.h"

DsmStats *qmp_query_dsm(Error **errp)
{
    error_setg(errp, "aggregate VMs are not supported by this QEMU binary");
    return NULL;
}

AggregateInfo *qmp_query_aggregate(Error **errp)
{
    error_setg(errp, "aggregate VMs are not supported by this QEMU binary");
    return NULL;
}

void qmp_aggregate_vcpu_migrate(int64_t cpu_index, const char *fragment,
                                Error **errp)
{
    error_setg(errp, "aggregate VMs are not supported by this QEMU binary");
}

AggregateNetPairInfoList *qmp_query_aggregate_net(Error **errp)
{
    error_setg(errp, "aggregate VMs are not supported by this QEMU binary");
    return NULL;
}
