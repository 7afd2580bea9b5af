# daemons/eventd rules
