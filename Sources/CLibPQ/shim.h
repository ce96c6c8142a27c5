#ifndef HANDRAIL_CLIBPQ_SHIM_H
#define HANDRAIL_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#ifdef __linux__
/* The connections' socket poller (Postgres/SocketPoller.swift). */
#include <sys/epoll.h>
#endif
#endif
