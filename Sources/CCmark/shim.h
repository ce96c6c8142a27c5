#ifndef HANDRAIL_CCMARK_SHIM_H
#define HANDRAIL_CCMARK_SHIM_H
#include <cmark.h>
#endif
