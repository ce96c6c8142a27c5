#ifndef HANDRAIL_CLIBPQ_SHIM_H
#define HANDRAIL_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
