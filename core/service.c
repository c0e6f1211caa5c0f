/*
 * The service registry (include/qilin/service.h): a small fixed table filled
 * by plugins' init hooks in the master and inherited by workers. Both.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <string.h>

#include <qilin/service.h>

/* Far more than the plugins we ship offer; a full table is a load error. */
#define MAX_SERVICES 16

struct service {
    const char *name; /* borrowed from the provider, like the table */
    unsigned version;
    const void *table;
};

/* Written only during master startup (plugin init), read afterwards in any
   process; workers get a copy with fork. */
static struct service services[MAX_SERVICES];
static size_t nservices;

int
qln_service_register(const char *name, unsigned version, const void *table)
{
    if (qln_service_get(name, version) != NULL)
        return -EEXIST;
    if (nservices == MAX_SERVICES)
        return -ENOSPC;
    services[nservices].name = name;
    services[nservices].version = version;
    services[nservices].table = table;
    nservices++;
    return 0;
}

const void *
qln_service_get(const char *name, unsigned version)
{
    size_t i;

    for (i = 0; i < nservices; i++)
        if (services[i].version == version && strcmp(services[i].name, name) == 0)
            return services[i].table;
    return NULL;
}
