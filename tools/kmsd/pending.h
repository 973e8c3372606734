/* TEMPORARY, until the ocsp branch is merged: the revocation functions of include/kms/server.h
 * that this libkms may not define yet are weak references, so kmsd links; a missing one is NULL
 * at run time and its endpoint answers 404/500. Delete this file once they are on main. */
#ifndef KMSD_PENDING_H
#define KMSD_PENDING_H

#include <stdbool.h>

#include "kms/server.h"

#pragma weak kms_crl_get
#pragma weak kms_ocsp_respond

static inline bool kmsd_revocation_available(void)
{
    return kms_crl_get != NULL && kms_ocsp_respond != NULL;
}

#endif
