/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every D-Bus name, path, interface and error of the suite (DESIGN.md
 * "D-Bus"), in one place next to the introspection XML and the policies.
 */

#define CC_ROUTER_SERVICE "org.callcenter.Router1"
#define CC_ROUTER_PATH "/org/callcenter/Router1"
#define CC_ROUTER_INTERFACE "org.callcenter.Router1"
#define CC_ROUTER_OPERATOR_INTERFACE "org.callcenter.Router1.Operator"
#define CC_ROUTER_OPERATOR_PREFIX "/org/callcenter/Router1/operator"

#define CC_TASKS_SERVICE "org.callcenter.Tasks1"
#define CC_TASKS_PATH "/org/callcenter/Tasks1"
#define CC_TASKS_INTERFACE "org.callcenter.Tasks1"

#define CC_CAMPAIGNS_SERVICE "org.callcenter.Campaigns1"
#define CC_CAMPAIGNS_PATH "/org/callcenter/Campaigns1"
#define CC_CAMPAIGNS_INTERFACE "org.callcenter.Campaigns1"

#define CC_DIALER_SERVICE "org.callcenter.Dialer1"
#define CC_DIALER_PATH "/org/callcenter/Dialer1"
#define CC_DIALER_INTERFACE "org.callcenter.Dialer1"

#define CC_ERROR_PREFIX "org.callcenter.Error."
#define CC_ERROR_NO_SUCH_OPERATOR CC_ERROR_PREFIX "NoSuchOperator"
#define CC_ERROR_NO_SUCH_CALL CC_ERROR_PREFIX "NoSuchCall"
#define CC_ERROR_NO_SUCH_TASK CC_ERROR_PREFIX "NoSuchTask"
#define CC_ERROR_NO_SUCH_CAMPAIGN CC_ERROR_PREFIX "NoSuchCampaign"
#define CC_ERROR_INVALID_STATE CC_ERROR_PREFIX "InvalidState"
#define CC_ERROR_EXISTS CC_ERROR_PREFIX "Exists"
#define CC_ERROR_INVALID_ARGUMENT CC_ERROR_PREFIX "InvalidArgument"
#define CC_ERROR_ACCESS_DENIED CC_ERROR_PREFIX "AccessDenied"
#define CC_ERROR_UNAVAILABLE CC_ERROR_PREFIX "Unavailable"
