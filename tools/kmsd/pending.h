/* TEMPORARY, until svcnet and ocsp are merged: the functions of include/kms/server.h that this
 * libkms may not define yet are weak references, so kmsd links; a missing one is NULL at run
 * time and its endpoint answers an internal error. Delete this file once they are on main. */
#ifndef KMSD_PENDING_H
#define KMSD_PENDING_H

#include <stdbool.h>

#include "kms/server.h"

#pragma weak kms_call_network
#pragma weak kms_client_region
#pragma weak kms_client_stats
#pragma weak kms_crl_get
#pragma weak kms_ocsp_respond

static inline bool kmsd_network_available(void)
{
    return kms_call_network != NULL;
}
static inline bool kmsd_region_available(void)
{
    return kms_client_region != NULL;
}
static inline bool kmsd_stats_available(void)
{
    return kms_client_stats != NULL;
}
static inline bool kmsd_revocation_available(void)
{
    return kms_crl_get != NULL && kms_ocsp_respond != NULL;
}

#endif
